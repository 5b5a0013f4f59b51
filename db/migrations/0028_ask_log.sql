-- The log of questions asked of the platform and of the answers given (issue 17: "every
-- question and answer is logged: who, when, which queries; the log is visible to admins").
-- depends: 0027_pipeline_watch
--
-- One row per question, written by services/ask.py after the answer is built, whichever edge
-- asked (API, dashboard, command line) and whichever answerer answered (the default one or a
-- language model). The answer is kept whole (the JSON of coldchain.ask.answer.Answer), so an
-- administrator sees exactly what the person was told and from which queries; `queries` repeats
-- the answer's list as an array to filter by.
--
-- The log is evidence of what was said to whom: the services may only add rows and read them.
-- coldchain_app gets SELECT and INSERT alone (the default privileges of 0006 would also give it
-- UPDATE and DELETE), so a row cannot be edited or removed by the web process.

CREATE TABLE ask_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    asked_at    timestamptz NOT NULL,
    actor       text NOT NULL,
    role        text NOT NULL,
    source      text,
    question    text NOT NULL CHECK (length(question) BETWEEN 1 AND 500),
    answerer    text NOT NULL CHECK (answerer IN ('default', 'llm')),
    understood  boolean NOT NULL,
    intent      text,
    answer      jsonb NOT NULL,
    queries     text[] NOT NULL DEFAULT '{}',
    duration_ms double precision NOT NULL CHECK (duration_ms >= 0)
);

CREATE INDEX ask_log_asked_at ON ask_log (asked_at DESC, id DESC);
CREATE INDEX ask_log_actor ON ask_log (actor, asked_at DESC);

REVOKE UPDATE, DELETE, TRUNCATE ON ask_log FROM coldchain_app;
