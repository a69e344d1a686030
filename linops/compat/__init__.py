"""Compatibility namespaces for code written against other libraries.

``linops.compat.cola`` runs CoLA (``cola-ml``) user code unchanged: ``import linops.compat.cola as
cola``. CoLA's module layout, signatures and conventions live there, and only there, so that the
core API stays clean.
"""
