// Who writes first when two connections of one process write one file: the
// recorder's writer, whose batch must not wait (its probes are only in
// memory until it commits), and the upkeep, which works through an hour in
// many short transactions. SQLite's busy handler is no queue: a writer that
// sleeps between its retries can miss every gap between two of the upkeep's
// transactions. So the writer says when it wants the lock, and the upkeep,
// before each transaction it begins, waits until the writer is done.
// The writer waits at most for the one transaction the upkeep is in, plus
// one poll of the busy handler (100 ms at most).

import Glibc
import Synchronization

public final class WriteTurn: Sendable {
    private let writersWaiting = Atomic<Int>(0)
    private let holding = Atomic<Bool>(false)

    public init() {}

    /// Whether the writer holds batches it could not write (disk full, a
    /// lock held elsewhere): work that can wait, waits, so that the held
    /// probes are written first when the database takes writes again.
    public var writerIsHolding: Bool {
        get { holding.load(ordering: .relaxed) }
        set { holding.store(newValue, ordering: .relaxed) }
    }

    /// Runs `body`, a write that must not wait, with the yielding writers
    /// held back at their next transaction.
    public func first<T>(_ body: () throws -> T) rethrows -> T {
        writersWaiting.add(1, ordering: .sequentiallyConsistent)
        defer { writersWaiting.subtract(1, ordering: .sequentiallyConsistent) }
        return try body()
    }

    /// Returns once no `first` write is waiting or running.
    public func yield() {
        while writersWaiting.load(ordering: .sequentiallyConsistent) > 0 { usleep(1_000) }
    }
}
