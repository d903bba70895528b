"""Published teachers by name: ``--teacher pretrained:NAME`` (RepDistiller's CIFAR-100 teachers, as mdistiller
publishes them), fetched once into a cache, unpacked safely, recorded and checked each time they are used.

``catalog`` names them and where they are published, ``download`` fetches a file (progress, resume, timeout),
``safe_tar`` unpacks the archive, ``cache`` keeps and checks the files (``kdzoo teachers`` shows it).
"""

from .cache import TeacherFile, add, cache_dir, cached_record, fetch, read_manifest, resolve, verify
from .catalog import ARCHIVE, DATASET, PREFIX, URL_ENV, archive_url, is_pretrained, name_of, published_names

__all__ = ["ARCHIVE", "DATASET", "PREFIX", "URL_ENV", "TeacherFile", "add", "archive_url", "cache_dir",
           "cached_record", "fetch", "is_pretrained", "name_of", "published_names", "read_manifest", "resolve",
           "verify"]
