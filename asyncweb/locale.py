"""Translations and locale-aware formatting of dates, lists and numbers.

Load translations once at start-up, from CSV files (:func:`load_translations`) or gettext
catalogues (:func:`load_gettext_translations`), then pick a locale per user with :func:`get`::

    asyncweb.locale.load_translations("translations")
    user_locale = asyncweb.locale.get("es_LA", "es")
    user_locale.translate("Sign out")
    user_locale.translate("%(n)d comment", "%(n)d comments", n) % {"n": n}

Behaviour and public names follow ``tornado.locale``; the implementation is our own.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import gettext
import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

from asyncweb.log import gen_log

__all__ = [
    "CONTEXT_SEPARATOR",
    "LOCALE_NAMES",
    "CSVLocale",
    "GettextLocale",
    "Locale",
    "get",
    "get_supported_locales",
    "load_gettext_translations",
    "load_translations",
    "set_default_locale",
]

# gettext's separator between a message's context and its text (msgctxt "\x04" msgid).
CONTEXT_SEPARATOR = "\x04"

_default_locale = "en_US"
_translations: dict[str, Any] = {}
_supported_locales: frozenset[str] = frozenset([_default_locale])
_use_gettext = False

_LOCALE_FILE_NAME = re.compile(r"[a-z]+(_[A-Z]+)?$")
_PLURAL_KINDS = ("plural", "singular", "unknown")


def get(*locale_codes: str) -> Locale:
    """The closest supported locale to the codes given (best first), else the default."""
    return Locale.get_closest(*locale_codes)


def set_default_locale(code: str) -> None:
    """Set the locale used when no requested one is supported (``en_US`` to start with).

    The default is always supported, whether or not it has translations.
    """
    global _default_locale, _supported_locales
    _default_locale = code
    _supported_locales = frozenset([*_translations, _default_locale])
    Locale._cache.clear()


def get_supported_locales() -> frozenset[str]:
    """The codes of the locales with translations, and the default locale."""
    return _supported_locales


def load_translations(directory: str, encoding: str | None = None) -> None:
    """Load CSV translation files named after their locale (``es_LA.csv``, ``fr.csv``).

    Each row is ``"message","translation"`` with an optional third column, ``plural`` or
    ``singular``, telling which form of a :meth:`Locale.translate` call with a count it is::

        "%(name)s liked this","A %(name)s les gustó esto","plural"
        "%(name)s liked this","A %(name)s le gustó esto","singular"

    Without ``encoding`` a file starting with a UTF-16 byte-order mark is read as UTF-16,
    anything else as UTF-8 (a UTF-8 BOM is skipped). Bad files and rows are logged and skipped.
    """
    global _translations, _supported_locales, _use_gettext
    translations: dict[str, dict[str, dict[str, str]]] = {}
    for filename in sorted(os.listdir(directory)):
        if not filename.endswith(".csv"):
            continue
        code = filename[: -len(".csv")]
        path = os.path.join(directory, filename)
        if not _LOCALE_FILE_NAME.match(code):
            gen_log.error("Unrecognized locale %r (path: %s)", code, path)
            continue
        file_encoding = encoding or _sniff_encoding(path)
        table: dict[str, dict[str, str]] = {}
        with open(path, encoding=file_encoding, newline="") as f:
            for number, row in enumerate(csv.reader(f), start=1):
                if len(row) < 2:
                    continue
                cells = [cell.strip() for cell in row]
                message, translation = cells[0], cells[1]
                kind = (cells[2] if len(cells) > 2 else "") or "unknown"
                if kind not in _PLURAL_KINDS:
                    gen_log.error(
                        "Unrecognized plural indicator %r in %s line %d", kind, path, number
                    )
                    continue
                table.setdefault(kind, {})[message] = translation
        translations[code] = table
    _translations = translations
    _use_gettext = False
    _supported_locales = frozenset([*_translations, _default_locale])
    Locale._cache.clear()
    gen_log.debug("Supported locales: %s", sorted(_supported_locales))


def _sniff_encoding(path: str) -> str:
    with open(path, "rb") as f:
        head = f.read(len(codecs.BOM_UTF16_LE))
    if head in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return "utf-16"
    return "utf-8-sig"


def load_gettext_translations(directory: str, domain: str) -> None:
    """Load gettext catalogues laid out as ``{directory}/{locale}/LC_MESSAGES/{domain}.mo``.

    Make them with the usual tools, for example::

        xgettext --language=Python --keyword=_:1,2 -d mydomain *.py *.html
        msgfmt mydomain.po -o translations/es_LA/LC_MESSAGES/mydomain.mo
    """
    global _translations, _supported_locales, _use_gettext
    translations: dict[str, gettext.NullTranslations] = {}
    for code in sorted(os.listdir(directory)):
        if code.startswith(".") or os.path.isfile(os.path.join(directory, code)):
            continue
        try:
            os.stat(os.path.join(directory, code, "LC_MESSAGES", domain + ".mo"))
            translations[code] = gettext.translation(domain, directory, languages=[code])
        except Exception as err:
            gen_log.error("Cannot load translation for '%s': %s", code, err)
            continue
    _translations = translations
    _use_gettext = True
    _supported_locales = frozenset([*_translations, _default_locale])
    Locale._cache.clear()
    gen_log.debug("Supported locales: %s", sorted(_supported_locales))


class Locale:
    """A locale: translates messages and formats dates, lists and numbers for one language.

    Get instances with :func:`get`, :meth:`get_closest` or :meth:`get`; they are cached.
    """

    _cache: dict[str, Locale] = {}

    @classmethod
    def get_closest(cls, *locale_codes: str) -> Locale:
        """The first supported of the codes, else the default locale.

        ``"es-ar"`` matches ``es_AR``, or failing that ``es``.
        """
        for code in locale_codes:
            if not code:
                continue
            parts = code.replace("-", "_").split("_")
            if len(parts) > 2:
                continue
            language = parts[0].lower()
            if len(parts) == 2:
                full = f"{language}_{parts[1].upper()}"
                if full in _supported_locales:
                    return cls.get(full)
            if language in _supported_locales:
                return cls.get(language)
        return cls.get(_default_locale)

    @classmethod
    def get(cls, code: str) -> Locale:
        """The locale for ``code``, which must be supported (see :func:`get_supported_locales`)."""
        locale = cls._cache.get(code)
        if locale is None:
            if code not in _supported_locales:
                raise ValueError(f"locale {code!r} is not supported")
            translations = _translations.get(code)
            if translations is None:
                locale = CSVLocale(code, {})
            elif _use_gettext:
                locale = GettextLocale(code, translations)
            else:
                locale = CSVLocale(code, translations)
            cls._cache[code] = locale
        return locale

    def __init__(self, code: str) -> None:
        self.code = code
        self.name: str = LOCALE_NAMES.get(code, {}).get("name", "Unknown")
        # Persian, Arabic and Hebrew are written right to left.
        self.rtl = code.startswith(("fa", "ar", "he"))
        _ = self.translate
        self._months = [
            _("January"),
            _("February"),
            _("March"),
            _("April"),
            _("May"),
            _("June"),
            _("July"),
            _("August"),
            _("September"),
            _("October"),
            _("November"),
            _("December"),
        ]
        self._weekdays = [
            _("Monday"),
            _("Tuesday"),
            _("Wednesday"),
            _("Thursday"),
            _("Friday"),
            _("Saturday"),
            _("Sunday"),
        ]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.code}>"

    def translate(
        self, message: str, plural_message: str | None = None, count: int | None = None
    ) -> str:
        """``message`` translated; with ``plural_message`` and ``count`` the right plural form."""
        raise NotImplementedError()

    def pgettext(
        self,
        context: str,
        message: str,
        plural_message: str | None = None,
        count: int | None = None,
    ) -> str:
        """Like :meth:`translate`, choosing the translation made for ``context``."""
        raise NotImplementedError()

    def format_date(
        self,
        date: int | float | datetime.datetime,
        gmt_offset: int = 0,
        relative: bool = True,
        shorter: bool = False,
        full_format: bool = False,
    ) -> str:
        """A date as people say it: "3 minutes ago", "yesterday at 5:32 pm", "March 4, 2020".

        ``date`` is a POSIX timestamp or a datetime (naive ones are UTC); ``gmt_offset`` is the
        reader's offset from UTC in minutes (as JavaScript's ``getTimezoneOffset()``, positive
        west of Greenwich). ``relative=False`` never says "ago" or "yesterday"; ``shorter``
        leaves the time of day out; ``full_format`` always writes month, day, year and time.
        Dates in the future get the full format, except the next minute, which counts as now.
        """
        if isinstance(date, (int, float)):
            date = datetime.datetime.fromtimestamp(date, datetime.timezone.utc)
        if date.tzinfo is None:
            date = date.replace(tzinfo=datetime.timezone.utc)
        now = datetime.datetime.now(datetime.timezone.utc)
        if date > now:
            if relative and (date - now).total_seconds() < 60:
                date = now  # a little clock skew: call it "now"
            else:
                full_format = True
        offset = datetime.timedelta(minutes=gmt_offset)
        local_date = date - offset
        local_yesterday = now - offset - datetime.timedelta(hours=24)
        elapsed = now - date
        seconds, days = elapsed.seconds, elapsed.days
        _ = self.translate

        pattern = None
        if not full_format:
            if relative and days == 0:
                if seconds < 50:
                    return _("1 second ago", "%(seconds)d seconds ago", seconds) % {
                        "seconds": seconds
                    }
                if seconds < 50 * 60:
                    minutes = round(seconds / 60.0)
                    return _("1 minute ago", "%(minutes)d minutes ago", minutes) % {
                        "minutes": minutes
                    }
                hours = round(seconds / 3600.0)
                return _("1 hour ago", "%(hours)d hours ago", hours) % {"hours": hours}
            if days == 0:
                pattern = _("%(time)s")
            elif days == 1 and local_date.day == local_yesterday.day and relative:
                pattern = _("yesterday") if shorter else _("yesterday at %(time)s")
            elif days < 5:
                pattern = _("%(weekday)s") if shorter else _("%(weekday)s at %(time)s")
            elif days < 334:  # under 11 months: the same month last year would be ambiguous
                pattern = (
                    _("%(month_name)s %(day)s")
                    if shorter
                    else _("%(month_name)s %(day)s at %(time)s")
                )
        if pattern is None:
            pattern = (
                _("%(month_name)s %(day)s, %(year)s")
                if shorter
                else _("%(month_name)s %(day)s, %(year)s at %(time)s")
            )
        return pattern % {
            "month_name": self._months[local_date.month - 1],
            "weekday": self._weekdays[local_date.weekday()],
            "day": str(local_date.day),
            "year": str(local_date.year),
            "time": self._time_of_day(local_date),
        }

    def _time_of_day(self, moment: datetime.datetime) -> str:
        hour12 = moment.hour % 12 or 12
        if self.code in ("en", "en_US"):
            return f"{hour12}:{moment.minute:02d} {'pm' if moment.hour >= 12 else 'am'}"
        if self.code == "zh_CN":
            # 上午 (morning) / 下午 (afternoon) before a 12-hour time
            return f"{'下午' if moment.hour >= 12 else '上午'}{hour12}:{moment.minute:02d}"
        return f"{moment.hour}:{moment.minute:02d}"

    def format_day(self, date: datetime.datetime, gmt_offset: int = 0, dow: bool = True) -> str:
        """A day such as "Monday, January 22" (``dow=False``: "January 22")."""
        local_date = date - datetime.timedelta(minutes=gmt_offset)
        _ = self.translate
        values = {
            "month_name": self._months[local_date.month - 1],
            "weekday": self._weekdays[local_date.weekday()],
            "day": str(local_date.day),
        }
        if dow:
            return _("%(weekday)s, %(month_name)s %(day)s") % values
        return _("%(month_name)s %(day)s") % values

    def list(self, parts: Sequence[str]) -> str:
        """A list as a sentence: ``["A", "B", "C"]`` becomes "A, B and C"."""
        if not parts:
            return ""
        if len(parts) == 1:
            return parts[0]
        comma = " \u0648 " if self.code.startswith("fa") else ", "
        return self.translate("%(commas)s and %(last)s") % {
            "commas": comma.join(parts[:-1]),
            "last": parts[-1],
        }

    def friendly_number(self, value: int) -> str:
        """``value`` with thousands separators in English ("1,234,567"), else as it is."""
        if self.code not in ("en", "en_US"):
            return str(value)
        return f"{value:,}"


class CSVLocale(Locale):
    """A locale whose translations came from :func:`load_translations`."""

    def __init__(self, code: str, translations: dict[str, dict[str, str]]) -> None:
        self.translations = translations
        super().__init__(code)

    def translate(
        self, message: str, plural_message: str | None = None, count: int | None = None
    ) -> str:
        if plural_message is not None:
            if count is None:
                raise ValueError("translate() with a plural message needs a count")
            if count != 1:
                message = plural_message
                table = self.translations.get("plural", {})
            else:
                table = self.translations.get("singular", {})
        else:
            table = self.translations.get("unknown", {})
        return table.get(message, message)

    def pgettext(
        self,
        context: str,
        message: str,
        plural_message: str | None = None,
        count: int | None = None,
    ) -> str:
        if self.translations:
            gen_log.warning("pgettext is not supported by CSVLocale")
        return self.translate(message, plural_message, count)


class GettextLocale(Locale):
    """A locale whose translations came from :func:`load_gettext_translations`."""

    def __init__(self, code: str, translations: gettext.NullTranslations) -> None:
        self.ngettext = translations.ngettext
        self.gettext = translations.gettext
        # Set before Locale.__init__, which translates the month and day names.
        super().__init__(code)

    def translate(
        self, message: str, plural_message: str | None = None, count: int | None = None
    ) -> str:
        if plural_message is not None:
            if count is None:
                raise ValueError("translate() with a plural message needs a count")
            return self.ngettext(message, plural_message, count)
        return self.gettext(message)

    def pgettext(
        self,
        context: str,
        message: str,
        plural_message: str | None = None,
        count: int | None = None,
    ) -> str:
        """Translate ``message`` as used in ``context`` (gettext's ``msgctxt``)::

            _ = locale.pgettext
            _("law", "right")        # as in "a right"
            _("good", "right")       # as in "correct"
            _("organization", "club", "clubs", len(clubs))

        Without a translation for that context, the message is returned untranslated.
        """
        if plural_message is not None:
            if count is None:
                raise ValueError("pgettext() with a plural message needs a count")
            result = self.ngettext(
                f"{context}{CONTEXT_SEPARATOR}{message}",
                f"{context}{CONTEXT_SEPARATOR}{plural_message}",
                count,
            )
            if CONTEXT_SEPARATOR in result:  # no translation for this context
                result = self.ngettext(message, plural_message, count)
            return result
        result = self.gettext(f"{context}{CONTEXT_SEPARATOR}{message}")
        if CONTEXT_SEPARATOR in result:
            result = message
        return result


def _names(entries: Iterable[tuple[str, str, str]]) -> dict[str, dict[str, str]]:
    return {code: {"name_en": english, "name": native} for code, english, native in entries}


# Locale code -> English and native names (the set Tornado lists).
LOCALE_NAMES: dict[str, dict[str, str]] = _names(
    [
        ("af_ZA", "Afrikaans", "Afrikaans"),
        ("am_ET", "Amharic", "አማርኛ"),
        ("ar_AR", "Arabic", "العربية"),
        ("bg_BG", "Bulgarian", "Български"),
        ("bn_IN", "Bengali", "বাংলা"),
        ("bs_BA", "Bosnian", "Bosanski"),
        ("ca_ES", "Catalan", "Català"),
        ("cs_CZ", "Czech", "Čeština"),
        ("cy_GB", "Welsh", "Cymraeg"),
        ("da_DK", "Danish", "Dansk"),
        ("de_DE", "German", "Deutsch"),
        ("el_GR", "Greek", "Ελληνικά"),
        ("en_GB", "English (UK)", "English (UK)"),
        ("en_US", "English (US)", "English (US)"),
        ("es_ES", "Spanish (Spain)", "Español (España)"),
        ("es_LA", "Spanish", "Español"),
        ("et_EE", "Estonian", "Eesti"),
        ("eu_ES", "Basque", "Euskara"),
        ("fa_IR", "Persian", "فارسی"),
        ("fi_FI", "Finnish", "Suomi"),
        ("fr_CA", "French (Canada)", "Français (Canada)"),
        ("fr_FR", "French", "Français"),
        ("ga_IE", "Irish", "Gaeilge"),
        ("gl_ES", "Galician", "Galego"),
        ("he_IL", "Hebrew", "עברית"),
        ("hi_IN", "Hindi", "हिन्दी"),
        ("hr_HR", "Croatian", "Hrvatski"),
        ("hu_HU", "Hungarian", "Magyar"),
        ("id_ID", "Indonesian", "Bahasa Indonesia"),
        ("is_IS", "Icelandic", "Íslenska"),
        ("it_IT", "Italian", "Italiano"),
        ("ja_JP", "Japanese", "日本語"),
        ("ko_KR", "Korean", "한국어"),
        ("lt_LT", "Lithuanian", "Lietuvių"),
        ("lv_LV", "Latvian", "Latviešu"),
        ("mk_MK", "Macedonian", "Македонски"),
        ("ml_IN", "Malayalam", "മലയാളം"),
        ("ms_MY", "Malay", "Bahasa Melayu"),
        ("nb_NO", "Norwegian (bokmal)", "Norsk (bokmål)"),
        ("nl_NL", "Dutch", "Nederlands"),
        ("nn_NO", "Norwegian (nynorsk)", "Norsk (nynorsk)"),
        ("pa_IN", "Punjabi", "ਪੰਜਾਬੀ"),
        ("pl_PL", "Polish", "Polski"),
        ("pt_BR", "Portuguese (Brazil)", "Português (Brasil)"),
        ("pt_PT", "Portuguese (Portugal)", "Português (Portugal)"),
        ("ro_RO", "Romanian", "Română"),
        ("ru_RU", "Russian", "Русский"),
        ("sk_SK", "Slovak", "Slovenčina"),
        ("sl_SI", "Slovenian", "Slovenščina"),
        ("sq_AL", "Albanian", "Shqip"),
        ("sr_RS", "Serbian", "Српски"),
        ("sv_SE", "Swedish", "Svenska"),
        ("sw_KE", "Swahili", "Kiswahili"),
        ("ta_IN", "Tamil", "தமிழ்"),
        ("te_IN", "Telugu", "తెలుగు"),
        ("th_TH", "Thai", "ภาษาไทย"),
        ("tl_PH", "Filipino", "Filipino"),
        ("tr_TR", "Turkish", "Türkçe"),
        ("uk_UA", "Ukrainian", "Українська"),
        ("vi_VN", "Vietnamese", "Tiếng Việt"),
        ("zh_CN", "Chinese (Simplified)", "中文(简体)"),
        ("zh_TW", "Chinese (Traditional)", "中文(繁體)"),
    ]
)
