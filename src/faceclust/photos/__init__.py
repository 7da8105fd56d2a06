"""Photos -> faces: detection, alignment and embedding (:mod:`.embed`), galleries (:mod:`.gallery`).

Needs the optional extra ``faceclust[photos]`` (dlib-bin, face-recognition-models,
pillow) only when photos are actually processed; reading a faces file needs numpy only.
"""

from __future__ import annotations

from .backend import BACKENDS, DlibBackend, Face, FaceBackend, get_backend
from .embed import (
    EmbedReport,
    FaceTable,
    embed_folder,
    is_faces_file,
    list_images,
    load_image,
    read_faces,
    write_faces,
)

__all__ = [
    "BACKENDS",
    "DlibBackend",
    "EmbedReport",
    "Face",
    "FaceBackend",
    "FaceTable",
    "embed_folder",
    "get_backend",
    "is_faces_file",
    "list_images",
    "load_image",
    "read_faces",
    "write_faces",
]
