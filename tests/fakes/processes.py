"""Reading the process tree from /proc, for tests that kill jobs and look for survivors."""

import glob


def descendants(pid):
    """Every live descendant of `pid` (children, grandchildren, ...), from /proc/*/stat."""
    children = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = open(stat).read()
        except OSError:
            continue
        # The command name in parentheses may hold spaces: split after its closing ")".
        fields = text.rsplit(")", 1)[1].split()
        children.setdefault(int(fields[1]), []).append(int(text.split()[0]))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
