"""Publishing: the only code that talks to AWS (boto3 is imported here, lazily, and nowhere else).

`aws.py` opens a session for a stage; `live.py` reads what is deployed (for the planner);
`executor.py` performs a plan's actions and records each one once AWS confirms it;
`stage.py` ties build, plan and execution together for `pkg plan --stage` and `pkg publish`.
"""
