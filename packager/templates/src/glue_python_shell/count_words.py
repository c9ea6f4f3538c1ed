"""Glue Python shell job: count the words of --text.

Locally: `pkg invoke glue_python_shell/count_words -- --text 'a b c'`.
"""

import json
import sys


def options(argv):
    """`--key value` pairs, as Glue passes job arguments."""
    found = {}
    for position, key in enumerate(argv[1:-1], start=1):
        if key.startswith("--"):
            found[key[2:]] = argv[position + 1]
    return found


if __name__ == "__main__":
    text = options(sys.argv).get("text", "")
    print(json.dumps({"words": len(text.split())}))
