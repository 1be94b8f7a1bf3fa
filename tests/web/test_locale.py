"""asyncweb.locale: CSV and gettext translations, closest-locale choice, date/list/number
formatting (behaviour checked against Tornado 6.6.1)."""

from __future__ import annotations

import codecs
import datetime
import logging
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import asyncweb.locale as locale_module
from asyncweb import locale
from asyncweb.template import DictLoader


@pytest.fixture(autouse=True)
def restore_locale_state() -> Iterator[None]:
    saved = (
        locale_module._default_locale,
        locale_module._translations,
        locale_module._supported_locales,
        locale_module._use_gettext,
        dict(locale.Locale._cache),
    )
    yield
    (
        locale_module._default_locale,
        locale_module._translations,
        locale_module._supported_locales,
        locale_module._use_gettext,
        cache,
    ) = saved
    locale.Locale._cache.clear()
    locale.Locale._cache.update(cache)


# -- a .mo compiler (the GNU catalogue format gettext reads) -----------------------------------


def compile_mo(messages: dict[str, str], path: Path) -> None:
    """Write ``messages`` (msgid -> msgstr; plural forms joined by NUL, contexts by EOT)."""
    ids = sorted(messages)
    keys = [m.encode("utf-8") for m in ids]
    values = [messages[m].encode("utf-8") for m in ids]
    header_size = 7 * 4
    table_size = len(ids) * 8
    keys_start = header_size + 2 * table_size
    offsets = []
    blob = b""
    for data in keys + values:
        offsets.append((len(data), keys_start + len(blob)))
        blob += data + b"\0"
    out = struct.pack("<7I", 0x950412DE, 0, len(ids), header_size, header_size + table_size, 0, 0)
    for length, offset in offsets:
        out += struct.pack("<2I", length, offset)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(out + blob)


def write_gettext_catalogue(root: Path) -> None:
    header = "Content-Type: text/plain; charset=UTF-8\nPlural-Forms: nplurals=2; plural=(n != 1);\n"
    compile_mo(
        {
            "": header,
            "school": "escuela",
            "%(count)d apple\0%(count)d apples": "%(count)d manzana\0%(count)d manzanas",
            "law\x04right": "el derecho",
            "good\x04right": "correcto",
            "organization\x04club\0organization\x04clubs": "el club\0los clubes",
            "stick\x04club\0stick\x04clubs": "el garrote\0los garrotes",
            "January": "enero",
            "Monday": "lunes",
            "%(weekday)s, %(month_name)s %(day)s": "%(weekday)s, %(day)s de %(month_name)s",
        },
        root / "es_LA" / "LC_MESSAGES" / "myapp.mo",
    )
    compile_mo({"": header, "school": "école"}, root / "fr_FR" / "LC_MESSAGES" / "myapp.mo")
    (root / "de_DE" / "LC_MESSAGES").mkdir(parents=True)  # no catalogue: skipped
    (root / "README").write_text("not a locale")
    (root / ".hidden").mkdir()


# -- CSV ------------------------------------------------------------------------------------


def write_csv_translations(root: Path) -> None:
    (root / "es_LA.csv").write_text(
        '"school","escuela"\n'
        '"%(name)s liked this","A %(name)s le gustó esto","singular"\n'
        '"%(name)s liked this","A %(name)s les gustó esto","plural"\n'
        '" padded "," relleno "\n'
        '"January","enero"\n'
        '"Wednesday","miércoles"\n'
        '"%(month_name)s %(day)s, %(year)s at %(time)s",'
        '"%(day)s de %(month_name)s de %(year)s a las %(time)s"\n'
        '"%(commas)s and %(last)s","%(commas)s y %(last)s"\n'
        '"bad row","fila","sometimes"\n'
        "\n"
        '"lonely"\n',
        encoding="utf-8",
    )
    (root / "fr_FR.csv").write_bytes(codecs.BOM_UTF16_LE + '"school","école"\n'.encode("utf-16-le"))
    (root / "de.csv").write_bytes(codecs.BOM_UTF8 + b'"school","Schule"\n')
    (root / "pt_BR.csv").write_bytes('"school","escola"\n'.encode("latin-1"))
    (root / "English.csv").write_text('"school","school"\n')
    (root / "notes.txt").write_text("ignored")


def test_load_csv_translations(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_csv_translations(tmp_path)
    (tmp_path / "pt_BR.csv").unlink()
    with caplog.at_level(logging.DEBUG, logger="asyncweb.general"):
        locale.load_translations(str(tmp_path))
    assert locale.get_supported_locales() == frozenset({"es_LA", "fr_FR", "de", "en_US"})
    assert "Unrecognized locale 'English'" in caplog.text
    assert "Unrecognized plural indicator 'sometimes'" in caplog.text

    es = locale.get("es_LA")
    assert isinstance(es, locale.CSVLocale)
    assert es.code == "es_LA" and es.name == "Español" and not es.rtl
    assert es.translate("school") == "escuela"
    assert es.translate("padded") == "relleno"  # cells are stripped
    assert es.translate("not translated") == "not translated"
    assert (
        es.translate("%(name)s liked this", "%(name)s liked this", 1) == "A %(name)s le gustó esto"
    )
    assert (
        es.translate("%(name)s liked this", "%(name)s liked this", 2) == "A %(name)s les gustó esto"
    )
    assert es.translate("a thing", "things", 2) == "things"
    assert es.translate("bad row") == "bad row"
    assert es.list(["a", "b", "c"]) == "a, b y c"
    assert es.format_day(datetime.datetime(2020, 1, 1)) == "miércoles, enero 1"
    assert locale.get("fr_FR").translate("school") == "école"  # UTF-16 with BOM
    assert locale.get("de").translate("school") == "Schule"  # UTF-8 with BOM
    assert locale.get("en_US").translate("school") == "school"


def test_csv_explicit_encoding(tmp_path: Path) -> None:
    write_csv_translations(tmp_path)
    for name in ("es_LA.csv", "fr_FR.csv", "de.csv"):
        (tmp_path / name).unlink()
    locale.load_translations(str(tmp_path), encoding="latin-1")
    assert locale.get("pt_BR").translate("school") == "escola"


def test_csv_locale_pgettext_falls_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_csv_translations(tmp_path)
    locale.load_translations(str(tmp_path))
    es = locale.get("es_LA")
    assert es.pgettext("building", "school") == "escuela"
    assert "pgettext is not supported by CSVLocale" in caplog.text


def test_csv_translate_plural_needs_count(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        locale.get("en_US").translate("a", "b")


def test_csv_dated_formats_are_translated(tmp_path: Path) -> None:
    write_csv_translations(tmp_path)
    locale.load_translations(str(tmp_path))
    es = locale.get("es")  # "es" falls back to... nothing: es_LA is not a prefix match
    assert es.code == "en_US"
    es = locale.get("es_LA")
    when = datetime.datetime(2001, 1, 2, 15, 4)
    assert es.format_date(when) == "2 de enero de 2001 a las 15:04"


# -- gettext ---------------------------------------------------------------------------------


def test_gettext_translations(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_gettext_catalogue(tmp_path)
    locale.load_gettext_translations(str(tmp_path), "myapp")
    assert locale.get_supported_locales() == frozenset({"es_LA", "fr_FR", "en_US"})
    assert "Cannot load translation for 'de_DE'" in caplog.text

    es = locale.get("es_LA")
    assert isinstance(es, locale.GettextLocale)
    assert es.translate("school") == "escuela"
    assert es.translate("missing") == "missing"
    assert es.translate("%(count)d apple", "%(count)d apples", 1) == "%(count)d manzana"
    assert es.translate("%(count)d apple", "%(count)d apples", 5) == "%(count)d manzanas"
    assert es.translate("one", "many", 1) == "one"
    assert es.translate("one", "many", 0) == "many"
    assert locale.get("fr_FR").translate("school") == "école"
    # month and weekday names come from the catalogue
    assert es.format_day(datetime.datetime(2024, 1, 1)) == "lunes, 1 de enero"
    assert es.format_day(datetime.datetime(2024, 1, 1), dow=False) == "enero 1"


def test_gettext_pgettext(tmp_path: Path) -> None:
    write_gettext_catalogue(tmp_path)
    locale.load_gettext_translations(str(tmp_path), "myapp")
    es = locale.get("es_LA")
    assert es.pgettext("law", "right") == "el derecho"
    assert es.pgettext("good", "right") == "correcto"
    assert es.pgettext("other", "right") == "right"  # unknown context: untranslated
    assert es.pgettext("other", "school") == "school"
    assert es.pgettext("organization", "club", "clubs", 1) == "el club"
    assert es.pgettext("organization", "club", "clubs", 2) == "los clubes"
    assert es.pgettext("stick", "club", "clubs", 2) == "los garrotes"
    assert es.pgettext("other", "%(count)d apple", "%(count)d apples", 3) == "%(count)d manzanas"
    assert es.pgettext("other", "club", "clubs", 3) == "clubs"


def test_gettext_in_templates(tmp_path: Path) -> None:
    write_gettext_catalogue(tmp_path)
    locale.load_gettext_translations(str(tmp_path), "myapp")
    es = locale.get("es_LA")
    loader = DictLoader(
        {
            "page.html": "{{ _('school') }}|{{ _('%(count)d apple', '%(count)d apples', n) % "
            "{'count': n} }}|{{ pgettext('law', 'right') }}"
        }
    )
    out = loader.load("page.html").generate(_=es.translate, pgettext=es.pgettext, n=3)
    assert out.decode() == "escuela|3 manzanas|el derecho"


# -- choosing a locale -----------------------------------------------------------------------


def test_get_closest(tmp_path: Path) -> None:
    write_csv_translations(tmp_path)
    locale.load_translations(str(tmp_path))
    assert locale.get("es-la").code == "es_LA"
    assert locale.get("ES_la").code == "es_LA"
    assert locale.get("fr_FR").code == "fr_FR"
    assert locale.get("fr").code == "en_US"  # no "fr" translations, only fr_FR
    assert locale.get("de_AT").code == "de"  # language fallback
    assert locale.get("xx_YY", "", "de-CH").code == "de"
    assert locale.get("a_b_c", "zz").code == "en_US"
    assert locale.get().code == "en_US"
    assert locale.Locale.get_closest("es_LA") is locale.get("es_LA")  # cached
    with pytest.raises(ValueError):
        locale.Locale.get("it_IT")


def test_set_default_locale(tmp_path: Path) -> None:
    write_csv_translations(tmp_path)
    locale.load_translations(str(tmp_path))
    locale.set_default_locale("es_LA")
    assert locale.get("zz").code == "es_LA"
    assert "en_US" not in locale.get_supported_locales()
    locale.set_default_locale("it_IT")  # a default without translations is supported
    assert "it_IT" in locale.get_supported_locales()
    assert locale.get("zz").code == "it_IT"
    assert locale.get("zz").translate("school") == "school"


# -- formatting --------------------------------------------------------------------------------


def ago(**kwargs: float) -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(**kwargs)


def twelve_hour(moment: datetime.datetime) -> str:
    return f"{moment.hour % 12 or 12}:{moment.minute:02d} {'pm' if moment.hour >= 12 else 'am'}"


def test_format_date_relative() -> None:
    en = locale.get("en_US")
    assert en.format_date(ago(seconds=0)) == "0 seconds ago"
    assert en.format_date(ago(seconds=1.2)) == "1 second ago"
    assert en.format_date(ago(seconds=30.5)) == "30 seconds ago"
    assert en.format_date(ago(seconds=55)) == "1 minute ago"
    assert en.format_date(ago(seconds=90.5)) == "2 minutes ago"
    assert en.format_date(ago(minutes=10, seconds=1)) == "10 minutes ago"
    assert en.format_date(ago(minutes=55)) == "1 hour ago"
    assert en.format_date(ago(hours=3, seconds=1)) == "3 hours ago"
    assert en.format_date(ago(hours=23)) == "23 hours ago"
    # timestamps and naive (UTC) datetimes
    assert en.format_date(time.time() - 120.5) == "2 minutes ago"
    assert en.format_date(ago(seconds=10.5).replace(tzinfo=None)) == "10 seconds ago"
    # a little in the future counts as now; further is a full date
    assert en.format_date(ago(seconds=-20)) == "0 seconds ago"
    future = ago(days=-3)
    assert en.format_date(future) == (
        f"{future:%B} {future.day}, {future.year} at {twelve_hour(future)}"
    )


def test_format_date_days_and_options() -> None:
    en = locale.get("en_US")
    when = ago(days=1, minutes=1)
    yesterday = ago(days=1)
    if when.day == yesterday.day:  # (not the minute after midnight)
        assert en.format_date(when) == f"yesterday at {twelve_hour(when)}"
        assert en.format_date(when, shorter=True) == "yesterday"
    assert en.format_date(when, relative=False) == f"{when:%A} at {twelve_hour(when)}"
    when = ago(days=3)
    assert en.format_date(when) == f"{when:%A} at {twelve_hour(when)}"
    assert en.format_date(when, shorter=True) == f"{when:%A}"
    when = ago(days=40)
    assert en.format_date(when) == f"{when:%B} {when.day} at {twelve_hour(when)}"
    assert en.format_date(when, shorter=True) == f"{when:%B} {when.day}"
    when = ago(days=400)
    assert en.format_date(when) == f"{when:%B} {when.day}, {when.year} at {twelve_hour(when)}"
    assert en.format_date(when, shorter=True) == f"{when:%B} {when.day}, {when.year}"
    when = ago(minutes=5)
    assert en.format_date(when, relative=False) == twelve_hour(when)
    assert en.format_date(when, full_format=True) == (
        f"{when:%B} {when.day}, {when.year} at {twelve_hour(when)}"
    )


def test_format_date_offsets_and_clocks() -> None:
    when = datetime.datetime(2001, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert locale.get("en_US").format_date(when) == "February 3, 2001 at 4:05 am"
    # gmt_offset is minutes west of UTC, as JavaScript's getTimezoneOffset()
    assert locale.get("en_US").format_date(when, gmt_offset=300) == "February 2, 2001 at 11:05 pm"
    assert locale.get("en_US").format_date(when, gmt_offset=-600) == "February 3, 2001 at 2:05 pm"
    locale.set_default_locale("de_DE")
    assert locale.get("de_DE").format_date(when, gmt_offset=-600) == "February 3, 2001 at 14:05"
    locale.set_default_locale("zh_CN")
    assert locale.get("zh_CN").format_date(when, gmt_offset=-600) == "February 3, 2001 at 下午2:05"
    assert locale.get("zh_CN").format_date(when) == "February 3, 2001 at 上午4:05"


def test_format_day() -> None:
    en = locale.get("en_US")
    day = datetime.datetime(2020, 3, 4, 1, 2)
    assert en.format_day(day) == "Wednesday, March 4"
    assert en.format_day(day, gmt_offset=120) == "Tuesday, March 3"
    assert en.format_day(day, dow=False) == "March 4"


def test_list_friendly_number_rtl_and_names() -> None:
    en = locale.get("en_US")
    assert en.list([]) == ""
    assert en.list(["a"]) == "a"
    assert en.list(["a", "b"]) == "a and b"
    assert en.list(["a", "b", "c"]) == "a, b and c"
    assert en.friendly_number(1234567) == "1,234,567"
    assert en.friendly_number(12) == "12"
    assert en.name == "English (US)" and not en.rtl
    locale.set_default_locale("fa_IR")
    fa = locale.get("fa_IR")
    assert fa.rtl and fa.name == "فارسی"
    assert fa.list(["a", "b", "c"]) == "a \u0648 b and c"
    assert fa.friendly_number(1234567) == "1234567"
    locale.set_default_locale("xx")
    assert locale.get("xx").name == "Unknown"


def test_locale_names_cover_tornados_list() -> None:
    expected = [
        "af_ZA",
        "am_ET",
        "ar_AR",
        "bg_BG",
        "bn_IN",
        "bs_BA",
        "ca_ES",
        "cs_CZ",
        "cy_GB",
        "da_DK",
        "de_DE",
        "el_GR",
        "en_GB",
        "en_US",
        "es_ES",
        "es_LA",
        "et_EE",
        "eu_ES",
        "fa_IR",
        "fi_FI",
        "fr_CA",
        "fr_FR",
        "ga_IE",
        "gl_ES",
        "he_IL",
        "hi_IN",
        "hr_HR",
        "hu_HU",
        "id_ID",
        "is_IS",
        "it_IT",
        "ja_JP",
        "ko_KR",
        "lt_LT",
        "lv_LV",
        "mk_MK",
        "ml_IN",
        "ms_MY",
        "nb_NO",
        "nl_NL",
        "nn_NO",
        "pa_IN",
        "pl_PL",
        "pt_BR",
        "pt_PT",
        "ro_RO",
        "ru_RU",
        "sk_SK",
        "sl_SI",
        "sq_AL",
        "sr_RS",
        "sv_SE",
        "sw_KE",
        "ta_IN",
        "te_IN",
        "th_TH",
        "tl_PH",
        "tr_TR",
        "uk_UA",
        "vi_VN",
        "zh_CN",
        "zh_TW",
    ]
    assert set(expected) <= set(locale.LOCALE_NAMES)
    for code in expected:
        assert set(locale.LOCALE_NAMES[code]) == {"name_en", "name"}
    assert locale.LOCALE_NAMES["de_DE"] == {"name_en": "German", "name": "Deutsch"}
    assert locale.LOCALE_NAMES["ja_JP"]["name"] == "日本語"
