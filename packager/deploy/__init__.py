"""Publishing: the only code that talks to AWS (boto3 is imported here, lazily, and nowhere else).

The chalice shape: plain resources, pure planners emitting typed instructions, one executor.

- `actions.py`: the shared vocabulary (`ActionKind`, frozen `Action`, `Target`, `Drift`, `PublishPlan`, `Outcome`);
- `records.py`: the one owner of the rows the index keeps in `published.details`;
- `naming.py`, `limits.py`, `diff.py`, `settings.py`: names and S3 keys, service limits, tag and
  change descriptions, the settings a stage must have — each once for Lambda and jobs;
- `lambda_plan.py`, `jobs_plan.py`: the planners (reads only, through `live.LiveState`);
- `handlers.py` (action kind -> AWS call) and `executor.py` (runs a plan, records each step);
- `stage.py` (`pkg plan --stage`, `pkg publish`), `gc.py` (`pkg gc`), `run.py` with `glue.py` and
  `emr.py` (`pkg run`), `aws.py` (sessions, and AWS errors turned into PkgErrors).
"""
