"""The report's words in Swedish, Finnish and English: one catalogue, looked up by key.

Every label of the report comes from here; tests/quality/test_report.py checks that every
key has all three languages. Reasons written by the mapping engine (quarantine) stay in
English, as the engine writes them.
"""

from __future__ import annotations

from typing import Any

LANGUAGES = ("sv", "fi", "en")

MESSAGES: dict[str, dict[str, str]] = {
    "title": {
        "sv": "Datakvalitet i invånardata",
        "fi": "Asukastietojen laatu",
        "en": "Resident data quality",
    },
    "subtitle": {
        "sv": "Kommunens system (öar) och deras ägare: vad som ska åtgärdas och vart det går",
        "fi": "Kunnan järjestelmät (saaret) ja niiden omistajat: mitä korjata ja mihin suuntaan",
        "en": "The municipality's systems (islands) and their owners: what to fix, "
        "and where it is heading",
    },
    "generated": {"sv": "Skapad {at}", "fi": "Laadittu {at}", "en": "Generated {at}"},
    "reviewed": {
        "sv": "Senaste granskning {at}",
        "fi": "Viimeisin tarkastus {at}",
        "en": "Last review {at}",
    },
    "no_review": {
        "sv": "Ingen kvalitetsgranskning ännu: kör islandhub report.",
        "fi": "Laatutarkastusta ei ole vielä tehty: aja islandhub report.",
        "en": "No quality review yet: run islandhub report.",
    },
    "h_overview": {"sv": "Översikt", "fi": "Yleiskuva", "en": "Overview"},
    "h_scorecard": {
        "sv": "Resultatkort per system",
        "fi": "Tuloskortti järjestelmittäin",
        "en": "Scorecard by island",
    },
    "h_fix": {"sv": "Åtgärda först", "fi": "Korjaa ensin", "en": "Fix first"},
    "h_trends": {"sv": "Trender", "fi": "Kehitys", "en": "Trends"},
    "h_quarantine": {
        "sv": "Orsaker till karantän",
        "fi": "Karanteenin syyt",
        "en": "Quarantine reasons",
    },
    "h_register": {
        "sv": "Överensstämmelse med befolkningsregistret",
        "fi": "Yhtäpitävyys väestörekisterin kanssa",
        "en": "Agreement with the population register",
    },
    "h_docs": {
        "sv": "Fördjupning: Great Expectations Data Docs",
        "fi": "Tarkemmin: Great Expectations Data Docs",
        "en": "Drill-down: Great Expectations Data Docs",
    },
    "h_method": {
        "sv": "Så mäts resultaten",
        "fi": "Näin tulokset mitataan",
        "en": "How the scores are measured",
    },
    "col_island": {"sv": "System", "fi": "Järjestelmä", "en": "Island"},
    "tile_islands": {"sv": "System", "fi": "Järjestelmiä", "en": "Islands"},
    "col_owner": {"sv": "Ägare", "fi": "Omistaja", "en": "Owner"},
    "col_records": {"sv": "Poster", "fi": "Tietueita", "en": "Records"},
    "col_quarantined": {"sv": "I karantän", "fi": "Karanteenissa", "en": "In quarantine"},
    "col_change": {"sv": "Förändring", "fi": "Muutos", "en": "Change"},
    "col_last_run": {"sv": "Senaste körning", "fi": "Viimeisin ajo", "en": "Last run"},
    "col_check": {"sv": "Kontroll", "fi": "Tarkistus", "en": "Check"},
    "col_affected": {"sv": "Berörda poster", "fi": "Tietueita", "en": "Records affected"},
    "col_examples": {
        "sv": "Exempel (maskerade)",
        "fi": "Esimerkkejä (peitetty)",
        "en": "Examples (masked)",
    },
    "col_reason": {"sv": "Orsak", "fi": "Syy", "en": "Reason"},
    "col_count": {"sv": "Antal", "fi": "Määrä", "en": "Count"},
    "col_field": {"sv": "Fält", "fi": "Kenttä", "en": "Field"},
    "col_compared": {"sv": "Jämförda", "fi": "Verrattu", "en": "Compared"},
    "col_agreed": {"sv": "Överens", "fi": "Yhtäpitäviä", "en": "Agree"},
    "col_stream": {"sv": "Ström", "fi": "Virta", "en": "Stream"},
    "completeness": {"sv": "Fullständighet", "fi": "Kattavuus", "en": "Completeness"},
    "validity": {"sv": "Giltighet", "fi": "Oikeellisuus", "en": "Validity"},
    "uniqueness": {"sv": "Unikhet", "fi": "Yksikäsitteisyys", "en": "Uniqueness"},
    "consistency": {"sv": "Konsekvens", "fi": "Yhtenäisyys", "en": "Consistency"},
    "freshness": {"sv": "Aktualitet", "fi": "Ajantasaisuus", "en": "Freshness"},
    "overall": {"sv": "Totalt", "fi": "Kokonaisuus", "en": "Overall"},
    "gate_held": {
        "sv": "stoppad av kvalitetsgrinden",
        "fi": "laatuportti pysäytti",
        "en": "held by the quality gate",
    },
    "gate_passed": {"sv": "godkänd", "fi": "hyväksytty", "en": "passed"},
    "never": {"sv": "aldrig", "fi": "ei koskaan", "en": "never"},
    "summary": {
        "sv": "{islands} system, {records} poster, {quarantined} i karantän. "
        "Totalt resultat {overall}.",
        "fi": "{islands} järjestelmää, {records} tietuetta, {quarantined} karanteenissa. "
        "Kokonaistulos {overall}.",
        "en": "{islands} islands, {records} records, {quarantined} in quarantine. "
        "Overall score {overall}.",
    },
    "weakest": {
        "sv": "Svagast: {island} ({owner}), {dimension} {score}.",
        "fi": "Heikoin: {island} ({owner}), {dimension} {score}.",
        "en": "Weakest: {island} ({owner}), {dimension} {score}.",
    },
    "held_now": {
        "sv": "Stoppade av kvalitetsgrinden vid senaste körningen: {islands}.",
        "fi": "Laatuportti pysäytti viimeisimmän ajon: {islands}.",
        "en": "Held by the quality gate at their last run: {islands}.",
    },
    "no_issues": {
        "sv": "Inga misslyckade kontroller.",
        "fi": "Ei epäonnistuneita tarkistuksia.",
        "en": "No failing checks.",
    },
    "no_quarantine": {
        "sv": "Inget i karantän.",
        "fi": "Karanteeni on tyhjä.",
        "en": "Nothing in quarantine.",
    },
    "one_point": {
        "sv": "En granskning hittills; trenden växer med varje daglig granskning.",
        "fi": "Yksi tarkastus tähän mennessä; kehitys näkyy päivittäisten tarkastusten myötä.",
        "en": "One review so far; the trend grows with every daily review.",
    },
    "trend_caption": {
        "sv": "Varje punkt är en granskning (dagligen) under de senaste {days} dagarna.",
        "fi": "Jokainen piste on yksi tarkastus (päivittäin) viimeisten {days} päivän ajalta.",
        "en": "Each point is one review (daily) over the last {days} days.",
    },
    "docs_intro": {
        "sv": "Varje ströms senaste granskning som Great Expectations visar den, "
        "med maskerade exempel:",
        "fi": "Kunkin virran viimeisin tarkastus Great Expectationsin näyttämänä, "
        "esimerkit peitettyinä:",
        "en": "Each stream's latest review as Great Expectations shows it, examples masked:",
    },
    "masking_note": {
        "sv": "Personbeteckningar visas maskerade (131052-***T); namn och adresser visas aldrig.",
        "fi": "Henkilötunnukset näytetään peitettyinä (131052-***T); nimiä ja osoitteita ei "
        "näytetä.",
        "en": "National ids are shown masked (131052-***T); names and addresses never.",
    },
    "reasons_language": {
        "sv": "Orsakerna är mappningsmotorns egna (på engelska).",
        "fi": "Syyt ovat kuvausmoottorin omia (englanniksi).",
        "en": "Reasons as the mapping engine writes them.",
    },
    "method_completeness": {
        "sv": "Andelen av systemets invånarfält (namn, adress, kontakter …) som är ifyllda "
        "i dess nuvarande poster.",
        "fi": "Kuinka suuri osa järjestelmän asukaskentistä (nimi, osoite, yhteystiedot …) "
        "on täytetty sen nykyisissä tietueissa.",
        "en": "The share of the island's resident fields (names, address, contacts …) filled "
        "in its current records.",
    },
    "method_validity": {
        "sv": "Andelen poster som inte är i karantän, gånger andelen värden som klarar "
        "formatkontrollerna (personbeteckning, FO-nummer, E.164-telefon, postnummer, "
        "kommunkod, e-post, datum).",
        "fi": "Karanteenin ulkopuolisten tietueiden osuus kerrottuna muototarkistukset "
        "(henkilötunnus, Y-tunnus, E.164-puhelin, postinumero, kuntanumero, sähköposti, "
        "päivämäärä) läpäisevien arvojen osuudella.",
        "en": "The share of records not in quarantine, times the share of values passing the "
        "format checks (HETU, Y-tunnus, E.164 phone, postal code, municipality code, email, "
        "date).",
    },
    "method_uniqueness": {
        "sv": "Andelen poster som inte är misstänkta dubbletter: två poster i samma ström som "
        "identitetsmatchningen kopplar till samma invånare (inte för bokningar och "
        "anmälningar).",
        "fi": "Niiden tietueiden osuus, jotka eivät ole epäiltyjä kaksoiskappaleita: saman "
        "virran kaksi tietuetta, jotka tunnistus yhdistää samaan asukkaaseen (ei varauksille "
        "eikä ilmoittautumisille).",
        "en": "The share of records that are no suspected duplicate: two records of one stream "
        "that identity resolution links to one resident (not for bookings and signups).",
    },
    "method_consistency": {
        "sv": "Andelen jämförda värden (förnamn, efternamn, adress, språk) som stämmer med "
        "befolkningsregistret för samma invånare.",
        "fi": "Verrattujen arvojen (etunimi, sukunimi, osoite, kieli) osuus, joka vastaa "
        "saman asukkaan väestörekisteritietoja.",
        "en": "The share of compared values (given name, family name, address, language) "
        "that agree with the population register for the same resident.",
    },
    "method_freshness": {
        "sv": "1 / (1 + missade schemalagda körningar sedan den senaste lyckade synkroniseringen).",
        "fi": "1 / (1 + väliin jääneet ajastetut ajot viimeisimmän onnistuneen "
        "synkronoinnin jälkeen).",
        "en": "1 / (1 + scheduled runs missed since the last successful sync).",
    },
    "kind_not_null": {
        "sv": "{field} är ifyllt",
        "fi": "{field} on täytetty",
        "en": "{field} is filled",
    },
    "kind_unique": {
        "sv": "{field} är unikt",
        "fi": "{field} on yksilöllinen",
        "en": "{field} is unique",
    },
    "kind_in_set": {
        "sv": "{field} har ett tillåtet värde",
        "fi": "{field} on sallittu arvo",
        "en": "{field} has an allowed value",
    },
    "kind_matches": {
        "sv": "{field} har rätt form",
        "fi": "{field} on oikeaa muotoa",
        "en": "{field} has the expected form",
    },
    "kind_hetu": {
        "sv": "{field} är en giltig personbeteckning",
        "fi": "{field} on kelvollinen henkilötunnus",
        "en": "{field} is a valid HETU",
    },
    "kind_ytunnus": {
        "sv": "{field} är ett giltigt FO-nummer",
        "fi": "{field} on kelvollinen Y-tunnus",
        "en": "{field} is a valid Y-tunnus",
    },
    "kind_e164_phone": {
        "sv": "{field} är ett telefonnummer i E.164-form",
        "fi": "{field} on E.164-muotoinen puhelinnumero",
        "en": "{field} is an E.164 phone number",
    },
    "kind_postal_code": {
        "sv": "{field} är ett finskt postnummer",
        "fi": "{field} on suomalainen postinumero",
        "en": "{field} is a Finnish postal code",
    },
    "kind_municipality_code": {
        "sv": "{field} är en känd kommunkod",
        "fi": "{field} on tunnettu kuntanumero",
        "en": "{field} is a known municipality code",
    },
    "kind_email": {
        "sv": "{field} är en e-postadress",
        "fi": "{field} on sähköpostiosoite",
        "en": "{field} is an email address",
    },
    "kind_iso_date": {
        "sv": "{field} är ett datum (ÅÅÅÅ-MM-DD)",
        "fi": "{field} on päivämäärä (VVVV-KK-PP)",
        "en": "{field} is a date (YYYY-MM-DD)",
    },
    "finding_quarantine": {
        "sv": "poster i karantän",
        "fi": "tietueita karanteenissa",
        "en": "records in quarantine",
    },
    "finding_unlinked": {
        "sv": "inte kopplad till befolkningsregistret",
        "fi": "ei yhdistetty väestörekisteriin",
        "en": "not linked to the population register",
    },
    "finding_contacts": {
        "sv": "e-post eller telefon delas med en invånare på en annan adress",
        "fi": "sähköposti tai puhelin on myös toisessa osoitteessa asuvalla",
        "en": "email or phone shared with a resident at another address",
    },
    "finding_duplicates": {
        "sv": "misstänkta dubbletter i systemet",
        "fi": "epäillyt kaksoiskappaleet järjestelmässä",
        "en": "suspected duplicates in the island",
    },
    "finding_register": {
        "sv": "{field} avviker från befolkningsregistret",
        "fi": "{field} poikkeaa väestörekisteristä",
        "en": "{field} differs from the population register",
    },
    "finding_stale": {
        "sv": "synkroniseringen är försenad: {missed} schemalagda körningar missade",
        "fi": "synkronointi myöhässä: {missed} ajastettua ajoa jäi väliin",
        "en": "sync overdue: {missed} scheduled runs missed",
    },
    "field_national_id": {"sv": "Personbeteckning", "fi": "Henkilötunnus", "en": "National id"},
    "field_given_name": {"sv": "Förnamn", "fi": "Etunimi", "en": "Given name"},
    "field_family_name": {"sv": "Efternamn", "fi": "Sukunimi", "en": "Family name"},
    "field_birth_date": {"sv": "Födelsedatum", "fi": "Syntymäaika", "en": "Birth date"},
    "field_language": {"sv": "Språk", "fi": "Kieli", "en": "Language"},
    "field_municipality_code": {"sv": "Hemkommun", "fi": "Kotikunta", "en": "Home municipality"},
    "field_non_disclosure": {"sv": "Spärrmarkering", "fi": "Turvakielto", "en": "Non-disclosure"},
    "field_email": {"sv": "E-post", "fi": "Sähköposti", "en": "Email"},
    "field_phone": {"sv": "Telefon", "fi": "Puhelin", "en": "Phone"},
    "field_address": {"sv": "Adress", "fi": "Osoite", "en": "Address"},
    "field_address.street": {"sv": "Gatuadress", "fi": "Katuosoite", "en": "Street address"},
    "field_address.postal_code": {"sv": "Postnummer", "fi": "Postinumero", "en": "Postal code"},
    "field_address.post_office": {
        "sv": "Postanstalt",
        "fi": "Postitoimipaikka",
        "en": "Post office",
    },
    "field_address.type": {"sv": "Adresstyp", "fi": "Osoitteen tyyppi", "en": "Address type"},
}


def text(key: str, lang: str, **values: Any) -> str:
    """The message `key` in `lang`, with `values` filled in."""
    entry = MESSAGES[key]
    return entry.get(lang, entry["en"]).format(**values)


def field_name(field: str, lang: str) -> str:
    """A target path in words (`address.postal_code`: Postinumero); others as written."""
    key = f"field_{field}"
    return text(key, lang) if key in MESSAGES else field
