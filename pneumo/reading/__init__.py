"""Reading an X-ray: the one path from a file to its Result (pneumo.reading.reader), and what only
that path uses: the decoder, the preprocessing, the checks (guard, population) and the networks
(classifier, explainer, lung segmenter, site profile). Everything else in serving imports this face.
"""

from pneumo.reading.decode import SUPPORTED, ImageReadError
from pneumo.reading.reader import Input, Map, Reader, Result, digest_of, expand_inputs, failed, files_or_say, import_networks
from pneumo.reading.fit import MIN_FILMS, NothingToFit, describe_fit, fit_files, fit_site, read_labels, read_site_films
from pneumo.reading.siteprofile import MIN_LABELLED, SiteProfile, SiteProfileError

__all__ = ["MIN_FILMS", "MIN_LABELLED", "SUPPORTED", "ImageReadError", "Input", "Map", "Reader", "Result", "NothingToFit", "SiteProfile", "SiteProfileError", "describe_fit", "fit_files", "fit_site", "read_labels", "read_site_films", "digest_of",
           "expand_inputs", "failed", "files_or_say", "import_networks"]
