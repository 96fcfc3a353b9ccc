// Numbers as the reports print them: fixed decimals, then trailing zeros
// (and a bare point) cut, never the zeros of an integer part.
@testable import Reports
import Testing

@Suite struct TrimmedNumberTests {
    @Test(arguments: [
        (300.0, 2, "300"), (0.25, 4, "0.25"), (1.0, 4, "1"), (10.0, 0, "10"), (100.0, 3, "100"),
        (-0.5, 3, "-0.5"), (0.0, 2, "0"), (0.99996, 4, "1"), (12.3406, 3, "12.341"), (0.1004, 3, "0.1"),
    ])
    func trailingZerosAreCutAndIntegerZerosKept(value: Double, decimals: Int, text: String) {
        #expect(trimmed(value, decimals) == text)
    }
}
