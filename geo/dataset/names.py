"""Synthetic but plausible North-China names: villages, communities and people.

Theory of operation: no list of Gucheng's villages or volunteers is public, and inventing real
people's names would be worse than inventing plausible ones. Village names follow the plain's
commonest patterns: a surname with a settlement word (王庄, 李家屯, 张官寨), optionally a
direction or size prefix (东刘寨, 小马庄), or a landscape stem (柳洼, 枣林); the committee's name
adds 村. Personal names draw the surname by its approximate frequency in Hebei (王, 张, 李, 刘 and
赵 lead) and one or two given-name characters from gendered pools. Every draw goes through the
caller's seeded :class:`numpy.random.Generator`, so names are reproducible.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

import numpy as np

__all__ = ["COMMUNITY_NAMES", "person_names", "surname_weights", "village_names"]

#: (surname, approximate share in per cent) for Hebei, after the national rankings with the
#: northern names (王 张 李 刘 赵 杨 孙 马 郭 高) weighted up and southern ones down.
_SURNAMES: Final = (
    ("王", 9.0), ("张", 8.6), ("李", 8.4), ("刘", 6.6), ("赵", 3.9), ("杨", 3.1),
    ("孙", 2.6), ("马", 2.2), ("郭", 2.0), ("高", 2.0), ("陈", 1.9), ("徐", 1.3),
    ("韩", 1.3), ("周", 1.2), ("吴", 1.0), ("朱", 1.0), ("胡", 0.9), ("于", 0.9),
    ("田", 0.9), ("董", 0.9), ("吕", 0.8), ("冯", 0.8), ("曹", 0.8), ("崔", 0.8),
    ("魏", 0.7), ("宋", 0.7), ("贾", 0.7), ("许", 0.6), ("侯", 0.6), ("郑", 0.6),
    ("常", 0.5), ("邢", 0.5), ("谢", 0.5), ("程", 0.5), ("袁", 0.5), ("耿", 0.5),
    ("路", 0.4), ("齐", 0.4), ("苏", 0.4), ("梁", 0.4), ("史", 0.4), ("尹", 0.4),
    ("石", 0.4), ("薛", 0.4), ("白", 0.4), ("牛", 0.3), ("安", 0.3), ("霍", 0.3),
    ("范", 0.3), ("庞", 0.3), ("贺", 0.3), ("姚", 0.3), ("任", 0.3), ("彭", 0.3),
    ("卢", 0.3), ("杜", 0.3), ("付", 0.3), ("秦", 0.3), ("闫", 0.3), ("戴", 0.2),
)  # fmt: skip

_SETTLEMENT_WORDS: Final = (
    ("庄", 8.0), ("家庄", 5.0), ("村", 2.0), ("屯", 2.5), ("家屯", 1.5), ("寨", 1.5),
    ("家寨", 1.0), ("官屯", 0.8), ("营", 1.2), ("集", 0.8), ("店", 1.0), ("楼", 0.8),
    ("庙", 0.6), ("口", 0.6), ("洼", 0.6), ("堤", 0.4), ("桥", 0.6), ("圈", 0.4),
    ("辛庄", 1.0), ("官庄", 1.0), ("码头", 0.2), ("坊", 0.4), ("堂", 0.4), ("井", 0.3),
)  # fmt: skip
_PREFIXES: Final = ("东", "西", "南", "北", "前", "后", "大", "小", "新", "中")
_STEMS: Final = (
    "柳", "杏", "枣", "槐", "桑", "榆", "梨", "苇", "沙", "杨", "白", "青", "高", "孟", "双",
)  # fmt: skip
_STEM_WORDS: Final = ("林", "园", "洼", "庄", "屯", "河", "坡", "滩", "营", "口")

#: The 13 urban communities of 郑口镇 (社区): common Chinese county-town community names.
COMMUNITY_NAMES: Final = (
    "府前社区", "运河社区", "建设社区", "新华社区", "育才社区", "朝阳社区", "振兴社区",
    "和平社区", "幸福社区", "光明社区", "文化社区", "团结社区", "滨河社区",
)  # fmt: skip

_MALE: Final = tuple(
    "伟强磊军勇涛明刚杰斌超辉鹏华平林峰宇浩凯建国志海立新振永春文金庆德顺利红兵东亮成"
)
_FEMALE: Final = tuple("芳娜敏静丽艳娟霞秀英玲燕梅红萍莉桂兰琳慧婷雪洁颖丹倩佳月凤华玉荣云淑")


def surname_weights() -> tuple[tuple[str, ...], np.ndarray]:
    """The surname table and its probabilities (summing to 1)."""
    names = tuple(s for s, _ in _SURNAMES)
    weights = np.array([w for _, w in _SURNAMES], dtype=np.float64)
    return names, weights / weights.sum()


def _pick(rng: np.random.Generator, table: tuple[tuple[str, float], ...]) -> str:
    weights = np.array([w for _, w in table])
    return table[int(rng.choice(len(table), p=weights / weights.sum()))][0]


def _village_name(rng: np.random.Generator) -> str:
    roll = rng.random()
    if roll < 0.12:
        stem = _STEMS[int(rng.integers(len(_STEMS)))]
        word = _STEM_WORDS[int(rng.integers(len(_STEM_WORDS)))]
        core = f"{stem}{word}"
    else:
        surnames, p = surname_weights()
        core = f"{surnames[int(rng.choice(len(surnames), p=p))]}{_pick(rng, _SETTLEMENT_WORDS)}"
    if rng.random() < 0.3:
        core = f"{_PREFIXES[int(rng.integers(len(_PREFIXES)))]}{core}"
    return core if core.endswith("村") else f"{core}村"


def village_names(rng: np.random.Generator, count: int, taken: Collection[str]) -> list[str]:
    """``count`` new village committee names (…村), distinct from each other and ``taken``."""
    seen = set(taken)
    out: list[str] = []
    while len(out) < count:
        name = _village_name(rng)
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def person_names(rng: np.random.Generator, female: np.ndarray) -> list[str]:
    """One synthetic name per entry of the boolean ``female`` array."""
    surnames, p = surname_weights()
    family = rng.choice(len(surnames), size=len(female), p=p)
    two_chars = rng.random(len(female)) < 0.7
    first = rng.random(len(female))
    second = rng.random(len(female))
    out = []
    for i, is_female in enumerate(female.tolist()):
        pool = _FEMALE if is_female else _MALE
        given = pool[int(first[i] * len(pool))]
        if two_chars[i]:
            given += pool[int(second[i] * len(pool))]
        out.append(surnames[int(family[i])] + given)
    return out
