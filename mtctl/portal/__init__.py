"""The user portal (SPEC §11): server-rendered pages under /portal/ of `mtctl serve`."""
