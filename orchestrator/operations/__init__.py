"""Operations: the work that runs inside an opened workspace, shared by the verbs (``orchestrator.actions``).

A verb (one module of ``actions/`` per CLI command) opens the workspace and its state store once
(:func:`orchestrator.operations.context.opened`) and passes them down; an operation never opens a workspace
from a path and never calls a verb. No action module imports another (tests/unit/test_imports.py).

- ``context``: the opened workspace and store, progress callbacks;
- ``inventories``: rendering and writing the inventories, their render cache and history;
- ``fingerprints``: each instance's deployment fingerprint, cached;
- ``converge``: one ansible-runner run of site.yml and its recorded outcome (what ``ruche apply`` does);
- ``health_checks``: checking instances through Caddy and recording the result;
- ``backup_jobs``: restic repositories and backups of instances, recorded;
- ``restores``: a snapshot restored into an instance;
- ``instances``: planning and recording a new instance (sizes, placement, quotas), changing its desired state;
- ``requests``: approving a member's request in a session;
- ``server_audit``: what the servers run compared with what ruche applied;
- ``upgrades``: an instance's upgrade, its rollback and the recovery of interrupted ones;
- ``lab``: the local lab's status and teardown.
"""
