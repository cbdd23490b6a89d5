/// A value in the database that hms-act wrote but cannot read back: the row was edited outside hms-act,
/// or written by a newer version.
///
/// Reading on with a default (no headers, a `null` output, no triggers) would hide the damage and pass it
/// on, so reads throw this instead. The description names the column and the row, never the value.
public struct StoreDataError: Error, Hashable, Sendable, CustomStringConvertible {
    /// `table.column`, as in the schema (`outbox.headers`).
    public var column: String
    /// The row's key (`task wf_…/review/1#2`, `outbox row 42`).
    public var row: String
    /// What is wrong with the value.
    public var problem: String

    public init(column: String, row: String, problem: String) {
        self.column = column
        self.row = row
        self.problem = problem
    }

    public var description: String { "\(column) of \(row) \(problem)" }
}
