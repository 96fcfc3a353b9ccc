/// Why a database file was refused. Its description is the one sentence the
/// user sees: what is wrong with which path, and what to do next. Nothing was
/// written to a refused file.
public struct OpenError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Reason: Sendable, Equatable {
        /// user_version is above what this build knows.
        case newerSchema(found: Int, known: Int)
        /// Not an SQLite file at all.
        case notADatabase
        /// An SQLite file whose pages are damaged or missing (truncated).
        case damaged(message: String)
        /// An SQLite file with tables of another program.
        case otherProgram
        /// An empty SQLite file, opened read-only: nothing was recorded yet.
        case empty
        /// A file of zero bytes where the recorder would write: not created by
        /// pingem (it writes the header at once), so not taken over silently.
        case emptyFile
        case isFolder
        /// Read-only mode and the file does not exist.
        case missing
        /// The file exists but cannot be opened or written (errno text or SQLite's message).
        case notAccessible(message: String)
        /// The file or its folder could not be created.
        case cannotCreate(path: String, message: String)
    }

    public var path: String
    public var reason: Reason

    public init(path: String, reason: Reason) {
        self.path = path; self.reason = reason
    }

    public var description: String {
        switch reason {
        case let .newerSchema(found, known):
            return "\(path) was written by a newer pingem (schema version \(found), this one knows up to \(known)): upgrade pingem."
        case .notADatabase:
            return "\(path) is not a pingem database (file is not a database); give the path of a pingem database with --db."
        case let .damaged(message):
            return "\(path) is damaged or truncated (\(message)); restore it from a backup or record into a new file with --db."
        case .otherProgram:
            return "\(path) is an SQLite database of another program, not a pingem database; give another path with --db."
        case .empty:
            return "\(path) holds no pingem data yet; run pingem record first or give the right path with --db."
        case .emptyFile:
            return "\(path) is an empty file, not a pingem database; delete it to let pingem record create the database there, or give another path with --db."
        case .isFolder:
            return "\(path) is a folder, not a database file; give the path of a file with --db."
        case .missing:
            return "\(path) does not exist; run pingem record first or give the right path with --db."
        case let .notAccessible(message):
            return "\(path) cannot be opened (\(message)); check its permissions or give another path with --db."
        case let .cannotCreate(created, message):
            return "cannot create \(created) (\(message)) for \(path); check the folder's permissions or give another path with --db."
        }
    }
}
