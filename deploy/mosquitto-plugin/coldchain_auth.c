/*
 * coldchain_auth: two rules Mosquitto 2.0's password file and acl_file cannot express.
 *
 * 1. Only the accounts named in `plugin_opt_subscribers` (comma-separated) may SUBSCRIBE.
 *    Mosquitto 2.0.x's acl_file never restricts SUBSCRIBE (src/security_default.c:
 *    "FIXME - implement ACL subscription strings"); its read rules apply only when a message is
 *    delivered. A logger that joined the ingester's `$share/...` group would be handed every
 *    n-th message of the fleet, have the delivery refused, and the broker would drop it after
 *    PUBACKing it to the logger that sent it. Here a logger's SUBSCRIBE gets "not authorized"
 *    (0x87 in MQTT 5, 0x80 in 3.1.1) and nothing is subscribed.
 *
 * 2. A client id must be the connecting user name, or the user name, ':' and a suffix
 *    (`coldchain-ingest:1`). A password-file user name cannot contain ':', so no account can
 *    present another account's client id, and so none can take over (or, with clean start,
 *    wipe) another's session: the ingester's queued messages included. Connections with
 *    another client id are refused with "not authorized" before any session is touched.
 *
 * Everything else is deferred to the password file and the acl_file, which must both be
 * configured: Mosquitto runs this plugin's callbacks before its own (plugins are initialised
 * before the default security is registered, and both are kept in registration order), and a
 * check every callback defers is refused. Options are read at start-up only: a changed
 * subscriber list needs a broker restart, not a SIGHUP.
 *
 * Build (scripts/setup-system.sh does it): gcc -shared -fPIC -O2 -o coldchain_auth.so
 * coldchain_auth.c, against the headers of Debian's mosquitto-dev. Plugin API version 5.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define MAX_SUBSCRIBERS 32

static mosquitto_plugin_id_t *plugin_id = NULL;
static char *subscriber_names = NULL;
static const char *subscribers[MAX_SUBSCRIBERS];
static int subscriber_count = 0;

static bool may_subscribe(const char *username)
{
	int i;

	if(username == NULL) return false;
	for(i = 0; i < subscriber_count; i++){
		if(strcmp(subscribers[i], username) == 0) return true;
	}
	return false;
}

static bool client_id_fits(const char *username, const char *client_id)
{
	size_t len;

	if(client_id == NULL) return false;
	len = strlen(username);
	if(strncmp(client_id, username, len) != 0) return false;
	return client_id[len] == '\0' || client_id[len] == ':';
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	const char *client_id = mosquitto_client_id(ed->client);

	(void)event;
	(void)userdata;
	if(ed->username == NULL) return MOSQ_ERR_PLUGIN_DEFER; /* anonymous: the broker's rules */
	if(!client_id_fits(ed->username, client_id)){
		mosquitto_log_printf(MOSQ_LOG_NOTICE,
				"coldchain_auth: refusing user %s with client id %s (must be the user name or "
				"'user name:suffix')", ed->username, client_id ? client_id : "(none)");
		return MOSQ_ERR_AUTH;
	}
	return MOSQ_ERR_PLUGIN_DEFER; /* the password file checks the password */
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	const char *username;

	(void)event;
	(void)userdata;
	if(ed->access != MOSQ_ACL_SUBSCRIBE) return MOSQ_ERR_PLUGIN_DEFER;
	username = mosquitto_client_username(ed->client);
	if(may_subscribe(username)) return MOSQ_ERR_PLUGIN_DEFER;
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "coldchain_auth: refusing SUBSCRIBE %s by %s",
			ed->topic, username ? username : "(anonymous)");
	return MOSQ_ERR_ACL_DENIED;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	int i;

	for(i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *opts, int opt_count)
{
	int i, rc;
	char *name, *save = NULL;

	(void)userdata;
	plugin_id = identifier;
	for(i = 0; i < opt_count; i++){
		if(strcmp(opts[i].key, "subscribers") != 0) continue;
		free(subscriber_names);
		subscriber_names = strdup(opts[i].value);
		if(subscriber_names == NULL) return MOSQ_ERR_NOMEM;
		subscriber_count = 0;
		for(name = strtok_r(subscriber_names, ", ", &save); name != NULL;
				name = strtok_r(NULL, ", ", &save)){
			if(subscriber_count == MAX_SUBSCRIBERS){
				mosquitto_log_printf(MOSQ_LOG_ERR, "coldchain_auth: more than %d subscribers",
						MAX_SUBSCRIBERS);
				return MOSQ_ERR_INVAL;
			}
			subscribers[subscriber_count++] = name;
		}
	}
	rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL);
	if(rc) return rc;
	rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, NULL);
	if(rc) return rc;
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "coldchain_auth: %d subscriber account(s)",
			subscriber_count);
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *opts, int opt_count)
{
	(void)userdata;
	(void)opts;
	(void)opt_count;
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
	free(subscriber_names);
	subscriber_names = NULL;
	subscriber_count = 0;
	return MOSQ_ERR_SUCCESS;
}
