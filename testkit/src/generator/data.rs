//! The generator's data tables: names, streets, places, forms and the code list, from which
//! the synthetic register is drawn.

/// Dutch trade words that open a company name.
pub const PREFIX_NL: &[&str] = &[
    "Bakkerij",
    "Brouwerij",
    "Garage",
    "Immo",
    "Bouwbedrijf",
    "Transport",
    "Apotheek",
    "Advocatenkantoor",
    "Schrijnwerkerij",
    "Kapsalon",
    "Frituur",
    "Drukkerij",
];
/// French trade words that open a company name.
pub const PREFIX_FR: &[&str] = &[
    "Boulangerie",
    "Société",
    "Garage",
    "Immobilière",
    "Entreprise",
    "Transports",
    "Pharmacie",
    "Cabinet d'avocats",
    "Menuiserie",
    "Salon de coiffure",
    "Brasserie à l'Étoile",
    "Imprimerie",
];
/// German trade words that open a company name.
pub const PREFIX_DE: &[&str] = &[
    "Bäckerei",
    "Autohaus",
    "Bauunternehmen",
    "Schreinerei",
    "Gaststätte",
];
/// Family names, accents and apostrophes included.
pub const SURNAMES: &[&str] = &[
    "Janssens",
    "Peeters",
    "Maes",
    "Jacobs",
    "Mertens",
    "Willems",
    "Claes",
    "Goossens",
    "Wouters",
    "De Smet",
    "Dubois",
    "Lambert",
    "Dupont",
    "Martin",
    "Lefèvre",
    "Müller",
    "Van den Broeck",
    "D'Hondt",
    "Vandevelde",
    "Ó Briain",
    "Çelik",
    "Nowak",
];
/// Legal-form suffixes (empty: none).
pub const FORMS: &[&str] = &[
    "BV", "NV", "SRL", "SA", "VZW", "ASBL", "CommV", "& Zonen", "& Fils", "GmbH", "",
];
/// Names that test the dialect: quotes, commas, line breaks, SQL.
pub const ODD_NAMES: &[&str] = &[
    "Bakkerij \"De Zon\"",
    "Janssens, Peeters & Co",
    "L'Atelier du Coin",
    "Chaussée d'Ixelles Invest",
    "A; B; C Consulting",
    "Robert'); DROP TABLE enterprises;--",
    "50% \"Korting\", altijd!",
    "Société Générale de Belgique",
    "Ærø & Øster",
    "O'Neill \\ Partners",
];
/// Streets, in Dutch and French.
pub const STREETS: &[(&str, &str)] = &[
    ("Elsensesteenweg", "Chaussée d'Ixelles"),
    ("Wetstraat", "Rue de la Loi"),
    ("Kerkstraat", "Rue de l'Église"),
    ("Stationsstraat", "Rue de la Gare"),
    ("Grote Markt", "Grand-Place"),
    ("Louizalaan", "Avenue Louise"),
    ("Sint-Lambertusplein", "Place Saint-Lambert"),
    ("Grasmarkt", "Rue du Marché aux Herbes"),
    ("Dorpsstraat", "Rue du Village"),
];
/// Postal codes with their municipality in Dutch and French.
pub const PLACES: &[(&str, &str, &str)] = &[
    ("1000", "Brussel", "Bruxelles"),
    ("2000", "Antwerpen", "Anvers"),
    ("9000", "Gent", "Gand"),
    ("4000", "Luik", "Liège"),
    ("8000", "Brugge", "Bruges"),
    ("3000", "Leuven", "Louvain"),
    ("5000", "Namen", "Namur"),
    ("7000", "Bergen", "Mons"),
    ("4700", "Eupen", "Eupen"),
    ("1050", "Elsene", "Ixelles"),
    ("2800", "Mechelen", "Malines"),
];
/// Foreign countries, in Dutch and French.
pub const FOREIGN: &[(&str, &str)] = &[
    ("Frankrijk", "France"),
    ("Nederland", "Pays-Bas"),
    ("Duitsland", "Allemagne"),
];
/// Juridical form codes.
pub const JURIDICAL_FORMS: &[&str] = &[
    "014", "015", "016", "017", "019", "610", "030", "011", "706", "612",
];

/// The code list's fixed categories: (category, [(code, Dutch description)]).
pub const CODES: &[(&str, &[(&str, &str)])] = &[
    (
        "ActivityGroup",
        &[
            ("001", "BTW-activiteiten"),
            ("003", "RSZ-activiteiten"),
            ("006", "Activiteiten van de onderneming"),
        ],
    ),
    (
        "Classification",
        &[
            ("MAIN", "Hoofdactiviteit"),
            ("SECO", "Nevenactiviteit"),
            ("ANCI", "Hulpactiviteit"),
        ],
    ),
    (
        "ContactType",
        &[
            ("TEL", "Telefoonnummer"),
            ("EMAIL", "E-mail"),
            ("WEB", "Webadres"),
        ],
    ),
    (
        "EntityContact",
        &[
            ("ENT", "Onderneming"),
            ("EST", "Vestigingseenheid"),
            ("BRA", "Bijkantoor"),
        ],
    ),
    (
        "JuridicalForm",
        &[
            ("014", "Naamloze vennootschap"),
            ("015", "Besloten vennootschap"),
            ("016", "Coöperatieve vennootschap"),
            ("017", "Vereniging zonder winstoogmerk"),
            ("019", "Stichting van openbaar nut"),
            ("610", "Buitenlandse entiteit"),
            ("030", "Buitenlandse onderneming"),
            ("011", "Vennootschap onder firma"),
            ("706", "Commanditaire vennootschap"),
            ("612", "Europese vennootschap"),
        ],
    ),
    (
        "JuridicalSituation",
        &[
            ("000", "Normale toestand"),
            ("012", "Opening faillissement"),
            ("100", "Gerechtelijke reorganisatie"),
        ],
    ),
    (
        "Language",
        &[
            ("0", "Onbekend"),
            ("1", "Frans"),
            ("2", "Nederlands"),
            ("3", "Duits"),
            ("4", "Engels"),
        ],
    ),
    ("Status", &[("AC", "Actief")]),
    (
        "TypeOfAddress",
        &[
            ("REGO", "Maatschappelijke zetel"),
            ("BAET", "Vestigingseenheid"),
            ("ABBR", "Bijkantoor"),
            ("OBAD", "Oudste actieve vestiging"),
        ],
    ),
    (
        "TypeOfDenomination",
        &[
            ("001", "Naam"),
            ("002", "Afkorting"),
            ("003", "Commerciële naam"),
            ("004", "Naam van het bijkantoor"),
        ],
    ),
    (
        "TypeOfEnterprise",
        &[("1", "Natuurlijk persoon"), ("2", "Rechtspersoon")],
    ),
];
