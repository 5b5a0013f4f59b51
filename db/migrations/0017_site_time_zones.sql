-- Each site's IANA time zone (issue 14, "Times are UTC everywhere"): the dashboard shows an
-- arrival or an excursion at a site in the site's own local time beside the person's zone
-- (dashboard/pages/__init__.py fmt_site_ts). Times stay stored in UTC (timestamptz); the zone
-- only changes how they are shown.
-- depends: 0010_master_data
--
-- services/locations.py checks the name against the zone database Python ships
-- (coldchain/timezones.py: an Area/City name such as 'Europe/Zurich', or 'UTC'), naming the field
-- when it is not one. The CHECK here is the second line: a name PostgreSQL's own zone database
-- does not know is refused too, so no write around the services stores a zone nobody can read.
-- Existing rows (sites registered before, and 0005's bare read points) get 'UTC', the zone
-- everything was shown in until now; an administrator sets the real one (sites page, API, CSV).
-- The column is on an audited table (0010's triggers): every change of a zone is recorded.

CREATE FUNCTION is_time_zone(name text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE pg_timezone_names.name = $1) $$;

ALTER TABLE locations
    ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';

-- A CHECK may not query a table; a trigger may (and names the column in its message).
CREATE FUNCTION locations_time_zone_known() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NOT is_time_zone(NEW.time_zone) THEN
        RAISE EXCEPTION 'locations.time_zone: % is not a known IANA time zone', NEW.time_zone
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER locations_time_zone_known
    BEFORE INSERT OR UPDATE OF time_zone ON locations
    FOR EACH ROW EXECUTE FUNCTION locations_time_zone_known();
