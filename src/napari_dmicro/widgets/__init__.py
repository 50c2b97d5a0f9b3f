"""napari widgets: thin Qt clients of the public API (the only place Qt is imported)."""
