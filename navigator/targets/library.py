"""The DLPFC target library (MNI152 coordinates, mm) with references.

Users add their own named targets (MNI or subject coordinates) in the workspace's
``targets/targets.json``; see :mod:`navigator.targets.resolve`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LibraryTarget:
    name: str
    mni: tuple[float, float, float]
    description: str
    reference: str


LIBRARY: dict[str, LibraryTarget] = {
    t.name: t
    for t in [
        LibraryTarget("fox", (-38.0, 44.0, 26.0),
                      "left DLPFC site most anticorrelated with the subgenual cingulate (group average)",
                      "Fox et al. 2012, Biol Psychiatry 72:595-603"),
        LibraryTarget("ba46", (-44.0, 40.0, 29.0), "left BA46, average of published studies",
                      "Fox et al. 2012 (average of BA46 coordinates used in rTMS studies)"),
        LibraryTarget("ba9", (-36.0, 39.0, 43.0), "left BA9, average of published studies",
                      "Fox et al. 2012 (average of BA9 coordinates used in rTMS studies)"),
        LibraryTarget("f3-cortical", (-37.0, 26.0, 49.0), "cortical projection of the Beam F3 site (group average)",
                      "Fox et al. 2012; Beam et al. 2009, Brain Stimul 2:50-54"),
        LibraryTarget("5cm-rule", (-41.0, 16.0, 54.0), "group-average site of the 5-cm rule",
                      "Fox et al. 2012; Herbsman et al. 2009"),
        LibraryTarget("f3-scalp", (-50.2, 53.1, 42.2), "F3 scalp electrode position on the MNI head (10-20 template)",
                      "Okamoto et al. 2004 / Jurcak et al. 2007"),
    ]
}

#: Seed for personalized (SAINT-style) fMRI targeting: subgenual anterior cingulate, MNI mm.
SGACC_SEED_MNI = (6.0, 16.0, -10.0)

ALIASES = {"fox2012": "fox", "sgacc-anticorrelated": "fox"}


def lookup(name: str) -> LibraryTarget | None:
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    return LIBRARY.get(key)
