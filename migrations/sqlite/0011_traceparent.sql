-- The W3C traceparent of a workflow's span, kept when the host exports traces (OpenTelemetry):
-- each attempt, on whichever host, starts its span as a child of it.
ALTER TABLE workflows ADD COLUMN traceparent TEXT;
