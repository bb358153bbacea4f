"""The desktop planning workstation (PyQt6). Only this package imports Qt.

Entry points: :func:`navigator.gui.app.run_gui` (``navigator gui [PATH]``) and
:func:`navigator.gui.app.display_available`. See ``docs/gui.md``.
"""
