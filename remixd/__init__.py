"""remixd: a folder-watching daemon that remixes dropped images with Ideogram's Remix API."""

__version__ = "0.1.0"
