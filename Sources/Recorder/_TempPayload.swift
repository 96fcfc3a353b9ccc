// TEMPORARY until the wire layer lands.
public struct ProbePayload: Sendable, Equatable {
    public var runID: UInt64
    public var targetIndex: UInt32
    public var sequence: UInt64
    public static let minimumSize = 24
    public init(runID: UInt64, targetIndex: UInt32, sequence: UInt64) { self.runID = runID; self.targetIndex = targetIndex; self.sequence = sequence }
    public func encode(size: Int) -> [UInt8] { [] }
    public static func decode(_ bytes: [UInt8], expectedSize: Int) -> ProbePayload? { nil }
    public static func decodeQuoted(_ bytes: [UInt8]) -> ProbePayload? { nil }
}
extension ProbePayload { public static let magic: [UInt8] = Array("PGEM".utf8) }
