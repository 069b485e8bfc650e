"""FHIR R4 search parameters: the registry of the 1,375 R4 definitions, index extraction at
write time, and the value coercions the query side shares.

>>> from healthmesh.fhir.search import default_registry, extract
>>> reg = default_registry()
>>> reg.get("Observation", "code").type
'token'
"""

from healthmesh.fhir.search.coerce import (
    DATE_MAX,
    DATE_MIN,
    NUM_MAX,
    NUM_MIN,
    InvalidSearchValue,
    date_range,
    normalize_string,
    number_range,
    parse_date_param,
    parse_number_param,
    parse_quantity_param,
    range_matches,
    split_prefix,
)
from healthmesh.fhir.search.extract import IndexRows, component_values, extract
from healthmesh.fhir.search.registry import (
    Registry,
    SearchParam,
    default_registry,
    load_registry,
)
from healthmesh.fhir.search.values import parse_reference

__all__ = [
    "DATE_MAX",
    "DATE_MIN",
    "NUM_MAX",
    "NUM_MIN",
    "IndexRows",
    "InvalidSearchValue",
    "Registry",
    "SearchParam",
    "component_values",
    "date_range",
    "default_registry",
    "extract",
    "load_registry",
    "normalize_string",
    "number_range",
    "parse_date_param",
    "parse_number_param",
    "parse_quantity_param",
    "parse_reference",
    "range_matches",
    "split_prefix",
]
