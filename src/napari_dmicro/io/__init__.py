"""Reading and writing complex fields, measurements and phase maps (zarr v3, OME-Zarr, npy/npz)."""
