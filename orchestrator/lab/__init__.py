"""The lab: real Debian servers booted with systemd-nspawn on this machine, for tests and demos.

The lab registers its servers in the same server registry as production servers, so the rest of
ruche needs no special case for it.  Everything it creates is written to a record file as soon
as it exists, so that ``ruche lab down`` removes exactly that, even after an interrupted ``up``.
"""
