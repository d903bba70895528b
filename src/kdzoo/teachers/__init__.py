"""Published teachers by name: ``--teacher pretrained:NAME`` (RepDistiller's CIFAR-100 teachers, as mdistiller
publishes them), fetched once into the teacher downloads folder, unpacked safely, recorded and checked each time
they are used.

``catalog`` names them and where they are published, ``download`` fetches a file (progress, resume, timeout),
``safe_tar`` unpacks the archive, ``downloads`` keeps and checks the files (``kdzoo teachers`` shows it).
"""

from .catalog import ARCHIVE, DATASET, PREFIX, URL_ENV, archive_url, is_pretrained, name_of, published_names
from .downloads import TeacherFile, add, downloaded_record, downloads_dir, fetch, read_manifest, resolve, verify

__all__ = ["ARCHIVE", "DATASET", "PREFIX", "URL_ENV", "TeacherFile", "add", "archive_url", "downloads_dir",
           "downloaded_record", "fetch", "is_pretrained", "name_of", "published_names", "read_manifest", "resolve",
           "verify"]
