"""`navigator gui [SUBJECT_DIR | IMAGE | DICOM_DIR]`: the desktop planning workstation."""

from __future__ import annotations

from navigator.cli import subcommand


def register(sub) -> None:
    p = subcommand(sub, "gui", "Open the desktop planning workstation (optionally on a subject workspace, "
                   "a T1 image, a DICOM folder, a SimNIBS m2m folder, a .msh head mesh or a plan).")
    p.add_argument("path", nargs="?", help="subject folder, image, DICOM/m2m folder, mesh or plan.json")
    p.set_defaults(func=run)


def run(args) -> int:
    from navigator.core.errors import NavigatorError

    from navigator.gui.app import display_available, missing_gui_packages, run_gui

    missing = missing_gui_packages()
    if missing:
        raise NavigatorError(f"the desktop app needs PyQt6, pyvista and pyvistaqt ({', '.join(missing)} not "
                             "installed: pip install navigator-brainstim[gui])")
    if not display_available():
        raise NavigatorError("no display available (DISPLAY/WAYLAND_DISPLAY unset or QT_QPA_PLATFORM=offscreen); "
                             "use the command line, e.g. `navigator demo --no-gui`")
    return run_gui(args.path)
