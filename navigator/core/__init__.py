"""Pure data types shared by every layer: volumes, meshes, workspaces, progress, errors."""
