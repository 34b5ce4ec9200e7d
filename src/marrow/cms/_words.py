"""Word pools for the sample content (:mod:`marrow.cms.sample`): enough variety that the text reads like
a catalogue and an editorial site, small enough to read here."""

from __future__ import annotations


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = _words(
    "Ana Aiko Amara Amir Andrea Anika Arjun Astrid Beatriz Ben Björn Camila Carlos Chen Chiara Chloe Dae- "
    "jung Daniel Deepika Diego Dmitri Elena Elif Emeka Emma Eun-ji Fatima Felix Freya Gabriel Grace Hana "
    "Hannah Haruto Hugo Ibrahim Ines Isabel Ivan Jae Jamal Javier Jin Joana Jonas Jorge Julia Kai Kamala "
    "Karan Kenji Kofi Lars Laura Leila Leon Lina Lucas Lucía Luis Maja Malik Marco Maria Mariana Mateo "
    "Maya Mehmet Mei Min-jun Mohammed Nadia Naledi Naomi Nia Nikolai Noah Nora Olga Omar Oscar Paolo "
    "Pedro Priya Rafael Rahul Ravi Rosa Sakura Samuel Sara Seo-yeon Sofia Soren Sun Taro Thandiwe Tomás "
    "Valentina Victor Wei Yara Yasmin Yusuf Zainab Zoe Adaeze Bongani Ingrid Magnus Nkechi Pilar Rei "
    "Tariq Wanjiru"
)

LAST_NAMES = _words(
    "Abe Adeyemi Ahmed Alvarez Andersen Aoki Bakker Banerjee Barros Becker Bianchi Bose Brandt Brooks "
    "Campbell Cardoso Castillo Chatterjee Cho Costa Cruz Dahl Das Delgado Diallo Dubois Duarte Eriksson "
    "Esposito Fernandes Fischer Fontaine Fujita Garcia Goh Gomez Gupta Haddad Hansen Hartmann Herrera "
    "Hoffmann Hosseini Huang Ibrahim Ito Iyer Jansen Jeong Jung Kaplan Kato Kaya Khan Kim Kowalski Kumar "
    "Lang Larsen Laurent Lee Lim Lindqvist Lopez Lund Mahlangu Martin Mehta Mendes Mensah Meyer Moreau "
    "Morales Moreno Mori Müller Murphy Nakamura Navarro Ndlovu Nguyen Nielsen Novak Nowak Obi Ochoa "
    "Okafor Okoye Oliveira Ortiz Osei Park Patel Pereira Petrov Quispe Rahman Ramos Reddy Reyes Ribeiro "
    "Richter Rivera Rojas Romano Rossi Ruiz Saito Salazar Santos Sato Schmidt Schneider Sharma Shin Silva "
    "Singh Sokolov Song Suzuki Svensson Takahashi Tanaka Tran Tshabalala Vargas Vega Volkov Wagner Walker "
    "Wang Weber Wong Yamada Yamamoto Yilmaz Yoon Zhang Zhou Zimmermann Achebe Bergström Chaudhry Dlamini "
    "Eze Farouk Gallo Horvat Ivanova Jovanović Keller Lindgren Marino Nasser Oduya"
)

ADJECTIVES = _words(
    "Silent Broken Last Hidden Golden Dark Wild Crimson Lost Midnight Frozen Burning Quiet Savage Perfect "
    "Little Endless Secret Fallen Electric Bitter Distant Hollow Iron Velvet Paper Glass Northern Summer "
    "Winter Sweet Restless Invisible Royal Second Strange Lucky Deadly Brave Borrowed Sleeping Wicked "
    "Blue Red Black White Shattered Uncharted"
)

NOUNS = _words(
    "River Kingdom Game Crown House Garden Heist Signal Witness Harbor Empire Promise Orchard Station "
    "Frontier Storm Mirror Letter Island Code Road Circle Machine Tide Horizon Season Verdict Archive "
    "Lighthouse Bakery Academy Hotel Border Canyon Dynasty Echo Fortune Gambit Hunter Inheritance Journey "
    "Kitchen Legacy Masquerade Night Outlaw Pact Queen Rebellion Sanctuary Tower Undercurrent Vow Wolves "
    "Year Alibi Blueprint Chorus Detour Exile"
)

PLACES = (
    *_words(
        "Berlin Lagos Seoul Madrid Mumbai Oslo Lisbon Tokyo Istanbul Paris Jakarta Nairobi Bogotá Manila"
    ),
    *_words("Naples Kraków Marseille Osaka Havana Cairo Dublin Reykjavík Monterrey"),
    "Cape Town",
    "Buenos Aires",
)

GENRES = (
    "Drama",
    "Comedy",
    "Thriller",
    "Crime",
    "Documentary",
    "Romance",
    "Action",
    "Sci-Fi",
    "Fantasy",
    "Horror",
    "Animation",
    "Kids & Family",
    "Reality",
    "Anime",
    "K-drama",
    "Stand-up Comedy",
    "Mystery",
    "Historical",
    "Sports",
    "Music",
    "Teen",
    "Independent",
    "True Crime",
    "Food & Travel",
    "Western",
)

ROLES = (
    "a detective",
    "a single mother",
    "a chef",
    "a hacker",
    "a retired boxer",
    "a teenage prodigy",
    "a marine biologist",
    "a con artist",
    "a small-town sheriff",
    "a royal heir",
    "a journalist",
    "a night-shift nurse",
    "an architect",
    "a cargo pilot",
    "a street artist",
    "a grieving widower",
    "a rookie lawyer",
    "a stand-up comedian",
    "two estranged sisters",
    "a family of bakers",
    "a group of friends",
    "a disgraced surgeon",
)

DEEDS = (
    "takes a job at a remote hotel",
    "returns home after twenty years",
    "inherits a failing vineyard",
    "uncovers a conspiracy inside the police",
    "enters a national cooking competition",
    "falls for a stranger on a night train",
    "witnesses a crime nobody else believes",
    "starts a band with old classmates",
    "goes undercover in a luxury cartel",
    "opens a bakery in a sleepy harbour town",
    "searches for a missing sister",
    "is framed for a murder",
    "plans the heist of a lifetime",
    "takes over a struggling football club",
    "moves into a house with a dark history",
    "trains for a race across the desert",
)

TWISTS = (
    "a secret from the past threatens everything",
    "nobody is quite who they seem",
    "the clock is running out",
    "old rivals will stop at nothing",
    "love keeps getting in the way",
    "the truth could tear the family apart",
    "a storm cuts the town off from the world",
    "every answer raises a darker question",
    "the whole country is watching",
    "the money was never theirs to spend",
)

MOODS = (
    "Tense and funny by turns.",
    "Based on a true story.",
    "From the makers of an award-winning drama.",
    "A slow burn with a shocking finale.",
    "Shot on location over two summers.",
    "Adapted from the best-selling novel.",
    "",
    "",
)

SEASONS = ("spring", "summer", "autumn", "winter", "the holidays", "the weekend")

PARAGRAPHS = (
    "When {t0} arrived, nobody expected it to become the **most-watched** show of the season.",
    "Fans of {t0} will find a lot to love in {t1}: the same *slow-burn tension*, the same unforgettable"
    " characters.",
    "We asked the cast what surprised them most about making {t0}. The answers were not what we expected.",
    "If you finished {t0} in one weekend, you are not alone — and {t1} is waiting for you next.",
    "The production moved between three countries in eight months, and it shows on screen.",
    "Here is everything we know so far: the cast, the release date and where the story goes next.",
    "Spoilers ahead. The final episode of {t0} answers one question and opens three more.",
    "From the first scene, {t0} makes its intentions clear: this is a story about *family*.",
    "Critics have called it **a triumph**, and viewers in more than 90 countries seem to agree.",
    "Read the full interview on [our partner site](https://example.com/interviews).",
)
