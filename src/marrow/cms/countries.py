"""The 190 countries the service is available in (ISO 3166-1 alpha-2), grouped by region.

Licences are sold by territory, so availability clusters by region: the sample generator draws
windows per region, and ingestion checks every code a window names against :data:`COUNTRIES`.
"""

from __future__ import annotations

__all__ = ["COUNTRIES", "REGIONS", "region_of"]

#: region → its countries, ordered roughly by market size
REGIONS: dict[str, tuple[str, ...]] = {
    name: tuple(codes.split())
    for name, codes in {
        "north_america": "US CA PR BM",
        "latin_america": "MX BR AR CO CL PE VE EC GT DO BO HN PY SV NI CR PA UY JM TT HT BS BZ BB GY SR "
        "AW CW KY AG DM GD KN LC VC",
        "western_europe": "DE GB FR NL BE AT CH IE LU LI MC",
        "northern_europe": "SE DK NO FI LT LV EE IS FO",
        "southern_europe": "IT ES PT GR CY MT AD SM VA GI",
        "eastern_europe": "PL RO CZ HU UA BG RS SK HR BA SI AL MK MD ME",
        "middle_east_north_africa": "TR EG SA AE IL MA DZ IQ JO TN LB KW QA OM BH LY PS",
        "sub_saharan_africa": "NG ZA KE ET GH TZ UG CI CM SN AO MZ MG ZM ZW ML BF NE RW MW BJ TG GN SL "
        "LR BI TD CF CG CD GA GQ NA BW LS SZ MU SC KM CV GM GW MR DJ ST",
        "south_asia": "IN PK BD LK NP BT MV",
        "east_asia": "JP KR TW HK MO MN",
        "southeast_asia": "ID PH VN TH MY SG MM KH LA BN TL",
        "central_asia_caucasus": "KZ UZ AZ GE AM KG TJ TM",
        "oceania": "AU NZ PG FJ SB VU WS TO KI FM MH PW",
    }.items()
}

#: every country, region by region
COUNTRIES: tuple[str, ...] = tuple(c for codes in REGIONS.values() for c in codes)

_REGION_OF = {c: region for region, codes in REGIONS.items() for c in codes}


def region_of(country: str) -> str:
    """The region of an ISO code from :data:`COUNTRIES`; KeyError for any other."""
    return _REGION_OF[country]


assert len(COUNTRIES) == len(_REGION_OF) == 190, "190 distinct countries"
