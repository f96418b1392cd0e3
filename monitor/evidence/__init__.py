"""An alert's evidence as files: the thumbnail of the best framed evidence and the clip's
fingerprint, written by the scorer, served by the worker and the review page, filed into the
gallery by a dismissal; and the signed, expiring URLs that let an alert's readers see them.

Three roles read and write these files, so they live in their own package, below ``alerts``,
``review`` and ``pipeline`` and above the ``likeness`` library whose fingerprint they keep.
The submodules are imported by name (``files``, ``urls``): a notifier that signs URLs need
not load the hashing library.
"""
