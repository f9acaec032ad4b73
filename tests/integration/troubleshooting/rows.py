"""rows.py: the README's Troubleshooting table as patterns, for
test-troubleshooting.sh. Standard library only.

  rows.py rows README       one line per table row: MESSAGE <TAB> REGEX
  rows.py match REGEX FILE  prints the first line of FILE the regex finds
                            (re.search), exits 1 when no line matches

MESSAGE is the first column with its backticks removed. In the REGEX the
placeholders of the table become wildcards, everything else is literal:

  ...                           any text, also none
  FILE LINE URL NAME PATH N A B X Y x y a b   (whole words) some text
  [section] "key" "value" "x"   a bracketed or quoted word of any content
  section, key, value           only as such a word, or right after "] "
                                ("[section] key"); elsewhere ("unknown
                                key", "untrusted key") they are literal
"""

import re
import sys

WORDS = "FILE|LINE|URL|NAME|PATH|N|A|B|X|Y|x|y|a|b"
NAMED = "section|key|value|" + WORDS
TOKEN = re.compile(
    r"(?P<dots>\.\.\.)"
    r"|\[(?:%(n)s)\](?P<bracket>)"
    r'|"(?:%(n)s)"(?P<quoted>)'
    r"|(?<=\] )(?:section|key|value)\b(?P<after>)"
    r"|\b(?:%(w)s)\b(?P<word>)" % {"n": NAMED, "w": WORDS}
)
WILDCARD = {
    "dots": ".*",
    "bracket": r"\[[^]]*\]",
    "quoted": r'"[^"]*"',
    "after": r"\S+",
    "word": ".+?",
}


def to_regex(message):
    out, pos = [], 0
    for m in TOKEN.finditer(message):
        out.append(re.escape(message[pos:m.start()]))
        out.append(WILDCARD[m.lastgroup])
        pos = m.end()
    out.append(re.escape(message[pos:]))
    return "".join(out)


def split_cells(line):
    """The cells of a Markdown table line; "\\|" is a literal bar."""
    cells, cur, i = [], "", 0
    body = line.strip().strip("|")
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body) and body[i + 1] == "|":
            cur += "|"
            i += 2
            continue
        if body[i] == "|":
            cells.append(cur.strip())
            cur = ""
        else:
            cur += body[i]
        i += 1
    cells.append(cur.strip())
    return cells


def rows(readme):
    inside, seen_header = False, False
    with open(readme, encoding="utf-8") as f:
        for line in f:
            if line.startswith("## "):
                inside = line.strip() == "## Troubleshooting"
                seen_header = False
                continue
            if not inside or not line.lstrip().startswith("|"):
                continue
            cells = split_cells(line)
            if not seen_header:
                seen_header = True  # the "message | meaning | ..." line
                continue
            if set(cells[0]) <= set("-: "):
                continue  # the separator line
            message = cells[0].replace("`", "")
            if message:
                print("%s\t%s" % (message, to_regex(message)))


def match(regex, path):
    pattern = re.compile(regex)
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if pattern.search(line):
                print(line.rstrip("\n"))
                return 0
    return 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "rows":
        rows(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "match":
        sys.exit(match(sys.argv[2], sys.argv[3]))
    else:
        sys.exit("usage: rows.py rows README | rows.py match REGEX FILE")
