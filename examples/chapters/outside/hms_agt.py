"""Stand-in for chapter 006's agent framework (``from hms_agt import Agent``), which is not part of hms-act:
an ``Agent`` only has a name. (hms-act records who did a task from the result's ``agent``, which
``hms_act.subscribe`` fills in from ``HMS_ACT_AGENT``.)"""


class Agent:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"Agent({self.name!r})"
