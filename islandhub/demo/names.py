"""Name pools of the synthetic municipality: Finnish, Swedish and other names, and variants."""

from __future__ import annotations


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


GIVEN: dict[tuple[str, str], tuple[str, ...]] = {
    ("fi", "F"): _words(
        """Aada Aila Aili Aino Alisa Anja Anna Anneli Anni Annikki Anu Arja Aurora Eeva Eevi
        Eija Elina Elisa Ella Elli Emilia Emma Enni Erja Esteri Hanna Heidi Heli Helena Helka
        Helmi Hilkka Hillevi Iida Ilona Inka Inkeri Irja Jaana Jenna Johanna Julia Kaarina
        Kaija Kaisa Katariina Kerttu Kirsi Kristiina Kyllikki Laura Leena Liisa Lilja Linnea
        Maarit Maija Marianne Marja Marjatta Marketta Mervi Minna Mirja Noora Oona Orvokki
        Outi Pauliina Pia Pirjo Päivi Raija Reetta Riikka Ritva Saara Sanna Satu Seija Sini
        Sirpa Sofia Susanna Suvi Tarja Tuula Tuulikki Ulla Venla Vilma""",
    ),
    ("fi", "M"): _words(
        """Aapo Aarne Aatu Aleksanteri Aleksi Antero Antti Ari Armas Arto Arttu Eemeli Eero
        Eerikki Eetu Eino Elias Erkki Esa Hannu Heikki Henrik Ilkka Ilmari Ismo Jaakko Jani
        Jari Jarmo Jere Johannes Joonas Jorma Jouko Juha Juhani Juho Jukka Juuso Kalevi Kalle
        Kari Kauko Kimmo Konsta Kristian Lasse Lauri Leevi Markku Marko Matias Matti Mauri
        Mikael Mikko Niilo Olavi Oliver Onni Oskari Osmo Pasi Pekka Pentti Pertti Petri Petteri
        Raimo Rasmus Reijo Risto Sakari Sami Santeri Seppo Tapani Tapio Teemu Tero Timo Toni
        Topias Tuomas Unto Urho Valtteri Veikko Veli Vesa Viljami Ville Väinö""",
    ),
    ("sv", "F"): _words(
        """Agneta Agnes Alice Alva Anna Annika Astrid Barbro Berit Birgitta Britt Camilla
        Cecilia Charlotta Doris Ebba Elin Elisabeth Ellen Elsa Emma Ester Eva Frida Gerd Greta
        Gun Gunilla Hanna Harriet Hedvig Helena Hilda Ida Inga Ingegerd Ingrid Irene Isabella
        Jenny Johanna Josefin Karin Katarina Kerstin Klara Kristina Linda Linnea Lisa Lotta
        Louise Lovisa Maja Malin Margareta Maria Marianne Marita Matilda Mona Monica Märta Nina
        Nora Olivia Pia Ragnhild Ronja Saga Sara Signe Siv Sofia Solveig Stina Susanne Svea
        Tilda Tove Ulla Ulrika Vera Viveka Wilma Ylva Åsa""",
    ),
    ("sv", "M"): _words(
        """Albin Alexander Anders Anton Arvid Axel Bengt Bertil Björn Bo Carl Christer Christian
        Conny Dan Daniel David Edvin Elias Elis Emil Erik Filip Folke Fredrik Gunnar Gustav Göran
        Gösta Hans Harald Henrik Holger Hugo Ingvar Isak Jakob Jan Joakim Johan Johannes Jonas
        Kaj Karl Kent Kim Kristian Lars Leif Lennart Linus Ludvig Magnus Mathias Mats Max Mikael
        Nils Olof Oskar Otto Patrik Per Peter Ragnar Rasmus Robert Rolf Rune Sebastian Stefan
        Sten Sture Sven Ted Tom Tomas Tor Torsten Ulf Valter Viktor Vilhelm William Åke
        Östen""",
    ),
    ("ru", "F"): ("Olga", "Natalia", "Irina", "Tatiana", "Svetlana", "Anastasia", "Jelena"),
    ("ru", "M"): ("Aleksei", "Dmitri", "Sergei", "Ivan", "Nikolai", "Andrei", "Vladimir"),
    ("et", "F"): ("Kadri", "Liis", "Maarja", "Triin", "Kersti", "Tiina", "Piret", "Katrin"),
    ("et", "M"): ("Andres", "Margus", "Toomas", "Jaan", "Rein", "Tõnu", "Priit", "Indrek"),
    ("en", "F"): ("Emily", "Sarah", "Jessica", "Rachel", "Charlotte", "Hannah", "Megan"),
    ("en", "M"): ("James", "John", "David", "Michael", "Thomas", "Daniel", "Matthew"),
    ("ar", "F"): ("Fatima", "Aisha", "Mariam", "Noor", "Layla", "Zainab", "Huda"),
    ("ar", "M"): ("Mohammed", "Ahmed", "Ali", "Omar", "Hassan", "Yousef", "Karim"),
    ("so", "F"): ("Amina", "Hodan", "Fadumo", "Sahra", "Hawa", "Asha", "Ifrah"),
    ("so", "M"): ("Abdi", "Mohamed", "Abdirahman", "Ahmed", "Hassan", "Farah", "Liban"),
}

FAMILY: dict[str, tuple[str, ...]] = {
    "fi": _words(
        """Aaltonen Ahonen Anttila Halonen Hakala Harju Heikkilä Heikkinen Heinonen Heiskanen
        Hietala Hiltunen Hirvonen Hokkanen Honkanen Huttunen Hyttinen Hyvönen Hänninen
        Hämäläinen Ikonen Jokela Jokinen Jääskeläinen Järvinen Kallio Kankaanpää Karjalainen
        Karppinen Kauppila Kauppinen Kemppainen Ketola Kettunen Kiiskinen Kinnunen Kivelä
        Koivisto Kokkonen Koponen Korhonen Korpela Koski Koskinen Kulmala Kurki Kärkkäinen
        Lahti Lahtinen Laakso Laaksonen Laine Laitinen Lampela Lampinen Lappalainen Lehtinen
        Lehto Lehtonen Leinonen Leppänen Manninen Mattila Miettinen Mikkola Moilanen Mustonen
        Mäenpää Mäkelä Mäkinen Niemi Nieminen Niskanen Nousiainen Nurmi Nurminen Ojala Oksanen
        Paananen Partanen Parviainen Pelkonen Peltola Peltonen Pesonen Pitkänen Pulkkinen
        Pyykkönen Rajala Ranta Rantala Rantanen Rautiainen Rissanen Ruotsalainen Räsänen Salmela
        Salminen Salo Salonen Savolainen Seppälä Sirola Suominen Tikkanen Toivonen Tuominen
        Turunen Vainio Valtonen Vesterinen Virtanen Väisänen Väätäinen Ylinen Hukkanen
        Jalonen Kivinen Lindholm Nyberg Mäkipää""",
    ),
    "sv": _words(
        """Ahlberg Andersson Backman Backström Berg Björklund Björkman Blomberg Blomqvist Borg
        Brunberg Dahlström Ek Ekberg Ekholm Ekman Ekström Engström Enqvist Fagerström Fellman
        Forsberg Forsman Forsström Fransman Granholm Granqvist Granström Grönholm Gröndahl
        Grönroos Gustafsson Hagström Hellström Holm Holmberg Holmqvist Holmström Hägglund
        Håkansson Isaksson Jakobsson Jansson Johansson Karlsson Karlström Kronqvist Lagerström
        Lindberg Lindblom Lindén Lindfors Lindgren Lindholm Lindqvist Lindroos Lindström
        Ljungqvist Lund Lundberg Lundqvist Lundström Lönnqvist Malmberg Mattsson Nordberg
        Nordling Nordman Nordqvist Nordström Nyholm Nylund Nyman Nyström Olin Palmqvist
        Pettersson Rosenberg Rosenqvist Rönnholm Sandberg Sandell Sandholm Sandström Silfverberg
        Sjöberg Sjöblom Sjögren Sjöholm Sjölund Sjöstedt Skog Stenman Stenroos Storbacka
        Strandberg Strömberg Sundberg Sundqvist Sundström Svensson Söderholm Söderlund
        Söderström Tallqvist Tötterman Wahlroos Wallin Weckström Westerberg Westerholm
        Westerlund Wiklund Wikman Wikström Åberg Åhman Åkerlund Åkerman Åström Öberg Öhman
        Eriksson""",
    ),
    "ru": ("Ivanov", "Smirnov", "Kuznetsov", "Popov", "Volkov", "Sokolov", "Petrov", "Orlov"),
    "et": ("Tamm", "Saar", "Sepp", "Mägi", "Kask", "Kukk", "Rebane", "Ilves", "Pärn", "Koppel"),
    "en": ("Smith", "Jones", "Brown", "Taylor", "Wilson", "Johnson", "Walker", "Evans"),
    "ar": ("Haddad", "Hussein", "Khalil", "Saleh", "Mansour", "Nasser", "Al-Ahmad"),
    "so": ("Ali", "Mohamed", "Hassan", "Abdi", "Warsame", "Farah", "Osman", "Jama"),
}

NICKNAMES: dict[str, str] = {
    # Finnish
    "Aleksanteri": "Santeri", "Aleksi": "Aki", "Antero": "Antti", "Antti": "Antsa",
    "Ari": "Arska", "Eemeli": "Eemi", "Eero": "Eki", "Heikki": "Hessu", "Jaakko": "Jaska",
    "Jari": "Jartsa", "Johannes": "Hannes", "Joonas": "Joni", "Juhani": "Jussi",
    "Kalevi": "Kalle", "Kimmo": "Kimi", "Lauri": "Late", "Markku": "Make", "Matias": "Matti",
    "Matti": "Masa", "Olavi": "Olli", "Pentti": "Pena", "Pertti": "Pertsa",
    "Petteri": "Pete", "Risto": "Ripa", "Sakari": "Sakke", "Sami": "Samppa",
    "Tapani": "Tapsa", "Teemu": "Teme", "Timo": "Timppa", "Tuomas": "Tumppi",
    "Valtteri": "Valtsu", "Viljami": "Ville",
    "Annikki": "Anni", "Elina": "Elli", "Emilia": "Emmi", "Helena": "Lena",
    "Johanna": "Jonna", "Kaarina": "Kaisu", "Kaisa": "Kaisu", "Katariina": "Kati",
    "Kristiina": "Kiia", "Marjatta": "Marja", "Sofia": "Sofi", "Susanna": "Sanna",
    "Tuulikki": "Tuuli",
    # Swedish
    "Alexander": "Alex", "Bengt": "Bengan", "Carl": "Calle", "Christian": "Chrille",
    "Daniel": "Danne", "Filip": "Fille", "Fredrik": "Fredde", "Gustav": "Gösta",
    "Henrik": "Henke", "Jakob": "Jakke", "Joakim": "Jocke", "Karl": "Kalle",
    "Kristian": "Kride", "Lars": "Lasse", "Ludvig": "Ludde", "Magnus": "Mange",
    "Mathias": "Matte", "Mikael": "Micke", "Oskar": "Ogge", "Patrik": "Patte",
    "Per": "Pelle", "Robert": "Robban", "Sebastian": "Sebbe", "Stefan": "Steffe",
    "Tomas": "Tompa", "Viktor": "Vicke", "Vilhelm": "Ville", "William": "Wille",
    "Birgitta": "Gittan", "Cecilia": "Cilla", "Charlotta": "Lotta", "Elisabeth": "Lisa",
    "Ingegerd": "Inge", "Ingrid": "Inga", "Isabella": "Bella", "Josefin": "Josse",
    "Katarina": "Kajsa", "Kerstin": "Kicki", "Kristina": "Stina", "Lovisa": "Lova",
    "Margareta": "Greta", "Matilda": "Tilda", "Susanne": "Sussi", "Viveka": "Vivi",
    # others
    "Aleksei": "Aljoša", "Dmitri": "Dima", "Ivan": "Vanja", "Natalia": "Nataša",
    "Anastasia": "Nastja", "Mohammed": "Mo", "Michael": "Mike", "James": "Jim",
}  # fmt: skip

VARIANT_GROUPS: tuple[tuple[str, ...], ...] = (
    ("Johan", "Juha", "Juho", "Johannes", "Juhani"),
    ("Karin", "Kaarina", "Katarina", "Katariina"),
    ("Erik", "Eerikki", "Erkki", "Eerik"),
    ("Kristina", "Kristiina"),
    ("Elisabeth", "Elisabet", "Liisa", "Lisa"),
    ("Mikael", "Mikko"),
    ("Mats", "Matti", "Mattias", "Matias", "Mathias"),
    ("Henrik", "Heikki", "Henrikki"),
    ("Anders", "Antti", "Andreas"),
    ("Per", "Pekka", "Peter", "Pietari"),
    ("Lars", "Lauri"),
    ("Nils", "Niilo"),
    ("Olof", "Olavi", "Olli"),
    ("Jakob", "Jaakko"),
    ("Tomas", "Tuomas"),
    ("Gustav", "Kustaa", "Gösta"),
    ("Karl", "Carl", "Kaarlo", "Kalle"),
    ("Margareta", "Marketta"),
    ("Maria", "Maija", "Marja"),
    ("Anna", "Anni"),
    ("Helena", "Leena"),
    ("Birgitta", "Piritta"),
    ("Ingrid", "Inkeri"),
    ("Susanna", "Susanne"),
    ("Alexander", "Aleksanteri"),
    ("Eva", "Eeva"),
    ("Oskar", "Oskari"),
    ("Emil", "Eemeli", "Eemil"),
    ("Vilhelm", "Wilhelm", "Viljami", "Ville"),
    ("Elias", "Eelis"),
    ("Elin", "Elina"),
    ("Georg", "Göran", "Yrjö"),
    ("Stefan", "Staffan", "Tapani"),
    ("Markus", "Markku"),
    ("Josef", "Juuso"),
    ("David", "Taavi", "Taavetti"),
    ("Kristian", "Christian"),
    ("Sofia", "Sohvi"),
)

_VARIANTS: dict[str, tuple[str, ...]] = {name: group for group in VARIANT_GROUPS for name in group}


def given_pool(language: str, sex: str) -> tuple[str, ...]:
    """Given names for a mother tongue and sex (Finnish names for an unknown language)."""
    return GIVEN.get((language, sex)) or GIVEN[("fi", sex)]


def family_pool(language: str) -> tuple[str, ...]:
    """Family names for a mother tongue (Finnish names for an unknown language)."""
    return FAMILY.get(language) or FAMILY["fi"]


def feminine(family_name: str, language: str) -> str:
    """A woman's form of a family name (Russian -ov/-ev/-in take an -a)."""
    if language == "ru" and family_name.endswith(("ov", "ev", "in")):
        return family_name + "a"
    return family_name


def nickname_of(name: str) -> str | None:
    """The common nickname of a given name ("Juhani" -> "Jussi"), or None."""
    return NICKNAMES.get(name)


def name_variants(name: str) -> list[str]:
    """The other Finnish/Swedish forms of the same name ("Johan" -> ["Juha", ...]), maybe []."""
    return [other for other in _VARIANTS.get(name, ()) if other != name]
