"""One router per resource: service info and dataset, and jobs."""
