"""The administration (系统管理): pages an administrator uses to run and adapt the system —
users, units, areas and grids, categories, settings, the audit log, the knowledge base and the
imports that onboard a city. Each section is a blueprint of its own module that lists itself
in the administration (``hotline.web.add_to_admin``); sections that belong to a domain above
(the routing catalogue, time limits, scoring) live in that domain and list themselves the
same way.
"""
