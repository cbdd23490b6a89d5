/// The pure run state machine; see `RunStateMachine`.
