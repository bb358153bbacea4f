"""Side panels of the main window: target, TMS, tDCS, results, export."""
