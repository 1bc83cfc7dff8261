-- Jobs that wait in Postgres keep the W3C trace context of the span that parked
-- them (JSON of the propagator's fields, e.g. {"traceparent": "00-…"}), so the
-- span that publishes them when due continues the webhook's trace. Empty when
-- spans were not exported.
ALTER TABLE scheduled_jobs ADD COLUMN trace_context text NOT NULL DEFAULT '';
ALTER TABLE held_jobs ADD COLUMN trace_context text NOT NULL DEFAULT '';
