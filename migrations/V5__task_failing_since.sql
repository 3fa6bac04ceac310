-- When a task's current streak of retryable failures began: `runtime.max_retry_age` counts
-- from it, so it must survive a restart (before, each boot started the streak over).
ALTER TABLE tasks ADD COLUMN failing_since timestamptz;
