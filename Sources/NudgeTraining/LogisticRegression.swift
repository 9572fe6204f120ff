import Foundation

/// Per-feature centring and scaling, as the model file's `standardize` block and scikit-learn's
/// `StandardScaler` define it: mean, and population standard deviation (divide by n, not n − 1); a feature
/// with no spread gets scale 1 so that it stays finite (and its weight comes out 0).
public struct Standardization: Sendable, Equatable {
    /// Means, one per feature.
    public var mean: [Double]
    /// Scales (standard deviations), one per feature; all positive.
    public var scale: [Double]

    /// Wraps known means and scales.
    public init(mean: [Double], scale: [Double]) {
        self.mean = mean
        self.scale = scale
    }

    /// Fits means and scales on row-major `values` with `width` columns, using the rows in `rows`
    /// (all rows when nil). Two passes (mean, then squared deviations) for accuracy.
    public init(fitting values: [Double], width: Int, rows: [Int]? = nil) {
        let indices = rows ?? Array(0..<(width == 0 ? 0 : values.count / width))
        var mean = [Double](repeating: 0, count: width)
        for i in indices {
            for j in 0..<width { mean[j] += values[i * width + j] }
        }
        let n = Double(max(indices.count, 1))
        for j in 0..<width { mean[j] /= n }
        var squares = [Double](repeating: 0, count: width)
        for i in indices {
            for j in 0..<width {
                let d = values[i * width + j] - mean[j]
                squares[j] += d * d
            }
        }
        var scale = [Double](repeating: 1, count: width)
        for j in 0..<width {
            let sd = (squares[j] / n).squareRoot()
            // As StandardScaler: a spread lost in rounding noise is no spread.
            scale[j] = sd > 10 * Double.ulpOfOne * max(1, abs(mean[j])) ? sd : 1
        }
        self.mean = mean
        self.scale = scale
    }

    /// The standardized rows `rows` of `values`, row-major.
    public func apply(_ values: [Double], width: Int, rows: [Int]) -> [Double] {
        var out = [Double](repeating: 0, count: rows.count * width)
        for (r, i) in rows.enumerated() {
            for j in 0..<width { out[r * width + j] = (values[i * width + j] - mean[j]) / scale[j] }
        }
        return out
    }
}

/// A fitted logistic regression on standardized features.
public struct LogisticFit: Sendable, Equatable {
    /// The intercept (not penalized).
    public var intercept: Double
    /// One weight per feature.
    public var weights: [Double]
    /// Newton iterations taken.
    public var iterations: Int
    /// True when the step fell below the tolerance before the iteration limit.
    public var converged: Bool
    /// The objective at the solution: summed log-loss + λ/2 · ‖w‖².
    public var objective: Double
}

/// L2-regularized logistic regression fitted by Newton's method (iteratively reweighted least squares).
///
/// Minimizes `Σᵢ logloss(yᵢ, b + xᵢ·w) + λ/2 · ‖w‖²`: the log-loss is **summed** over rows (not averaged)
/// and the intercept b is not penalized. This is scikit-learn's `LogisticRegression(C = 1/λ)` objective
/// exactly (it minimizes `C · Σ logloss + ½‖w‖²`, the same minimizer), so `--l2 1.0` here and `C=1.0` there
/// give the same coefficients.
///
/// Each step solves `(XᵀWX + λI₀) δ = ∇` by Cholesky (I₀: identity with 0 for the intercept), with step
/// halving when the objective would not decrease (Armijo), so it converges even from far away. Converged
/// when the largest coordinate of a full step is below `tolerance`.
public enum LogisticRegression {
    /// Fitting options.
    public struct Options: Sendable {
        /// λ, the L2 penalty on the summed log-loss (scikit-learn's 1/C). 0 fits by maximum likelihood.
        public var l2: Double = 1
        /// Newton iterations at most.
        public var maxIterations = 100
        /// Stop when the largest change of a coefficient is below this.
        public var tolerance = 1e-10

        /// The defaults: λ = 1, 100 iterations, tolerance 1e-10.
        public init(l2: Double = 1) { self.l2 = l2 }
    }

    /// Fits on row-major standardized `x` (`labels.count` rows of `width` columns) and 0/1 `labels`.
    public static func fit(x: [Double], labels: [Double], width: Int, options: Options = Options()) throws(TrainingError) -> LogisticFit {
        let n = labels.count
        guard n > 0 else { throw .data(problem: "no rows to fit; check the dataset and the holdout split") }
        guard x.count == n * width else {
            throw .data(problem: "the design matrix has \(x.count) values for \(n) rows of \(width) features")
        }
        guard options.l2 >= 0, options.l2.isFinite else { throw .option(name: "l2", value: "\(options.l2)", expected: "a finite number >= 0") }
        let positives = labels.reduce(0, +)
        let p = width + 1  // coefficient 0 is the intercept
        var beta = [Double](repeating: 0, count: p)
        // Start from the base rate: the intercept-only optimum, a step away from most solutions.
        let rate = min(max(positives / Double(n), 1e-6), 1 - 1e-6)
        beta[0] = log(rate / (1 - rate))

        var current = objective(x: x, labels: labels, width: width, beta: beta, l2: options.l2)
        var iterations = 0
        var converged = false
        var gradient = [Double](repeating: 0, count: p)
        var hessian = [Double](repeating: 0, count: p * p)
        while iterations < options.maxIterations {
            iterations += 1
            derivatives(x: x, labels: labels, width: width, beta: beta, l2: options.l2, gradient: &gradient, hessian: &hessian)
            guard let step = Cholesky.solve(hessian, gradient, size: p) ?? Cholesky.solve(ridged(hessian, p), gradient, size: p) else {
                throw .data(problem: "the Hessian is singular even with a small ridge; add L2 (--l2) or drop constant features")
            }
            var length = 1.0
            let slope = zip(gradient, step).reduce(0) { $0 + $1.0 * $1.1 }
            var candidate = beta
            var value = current
            while true {
                for k in 0..<p { candidate[k] = beta[k] - length * step[k] }
                value = objective(x: x, labels: labels, width: width, beta: candidate, l2: options.l2)
                // The slack absorbs rounding in a sum over many rows, which must not pass for an uphill step.
                if value <= current - 1e-4 * length * slope + 1e-13 * abs(current) || length < 1e-10 { break }
                length /= 2
            }
            let change = step.reduce(0) { max($0, abs($1)) } * length
            beta = candidate
            current = value
            if change < options.tolerance {
                converged = true
                break
            }
            if length < 1e-10 {
                // No decrease possible at machine precision: we are at the optimum to rounding.
                converged = true
                break
            }
        }
        return LogisticFit(intercept: beta[0], weights: Array(beta[1...]), iterations: iterations, converged: converged,
                           objective: current)
    }

    /// Summed log-loss + λ/2‖w‖² at `beta`.
    static func objective(x: [Double], labels: [Double], width: Int, beta: [Double], l2: Double) -> Double {
        var total = 0.0
        for i in 0..<labels.count {
            let z = linear(x, i, width, beta)
            total += softplus(z) - labels[i] * z
        }
        var penalty = 0.0
        for k in 1..<beta.count { penalty += beta[k] * beta[k] }
        return total + 0.5 * l2 * penalty
    }

    /// Gradient and Hessian of the objective at `beta` (Hessian row-major, intercept first).
    static func derivatives(x: [Double], labels: [Double], width: Int, beta: [Double], l2: Double,
                            gradient: inout [Double], hessian: inout [Double]) {
        let p = width + 1
        for k in 0..<p { gradient[k] = 0 }
        for k in 0..<(p * p) { hessian[k] = 0 }
        x.withUnsafeBufferPointer { xs in
            gradient.withUnsafeMutableBufferPointer { g in
                hessian.withUnsafeMutableBufferPointer { h in
                    for i in 0..<labels.count {
                        let row = i * width
                        var z = beta[0]
                        for j in 0..<width { z += beta[j + 1] * xs[row + j] }
                        let probability = sigmoid(z)
                        let residual = probability - labels[i]
                        let weight = probability * (1 - probability)
                        g[0] += residual
                        h[0] += weight
                        for a in 0..<width {
                            let xa = xs[row + a]
                            g[a + 1] += residual * xa
                            let wa = weight * xa
                            h[a + 1] += wa  // row 0, column a+1 (intercept × feature)
                            for b in 0...a { h[(a + 1) * p + b + 1] += wa * xs[row + b] }
                        }
                    }
                }
            }
        }
        // Mirror the lower triangle and the intercept row; add the penalty.
        for a in 1..<p {
            hessian[a * p] = hessian[a]
            for b in 1..<a { hessian[b * p + a] = hessian[a * p + b] }
            gradient[a] += l2 * beta[a]
            hessian[a * p + a] += l2
        }
    }

    private static func ridged(_ hessian: [Double], _ p: Int) -> [Double] {
        var copy = hessian
        let trace = (0..<p).reduce(0) { $0 + hessian[$1 * p + $1] }
        for k in 0..<p { copy[k * p + k] += 1e-10 * max(trace / Double(p), 1) }
        return copy
    }

    @inline(__always)
    private static func linear(_ x: [Double], _ i: Int, _ width: Int, _ beta: [Double]) -> Double {
        var z = beta[0]
        for j in 0..<width { z += beta[j + 1] * x[i * width + j] }
        return z
    }

    /// log(1 + eᶻ) without overflow.
    @inline(__always)
    public static func softplus(_ z: Double) -> Double {
        z > 0 ? z + log1p(exp(-z)) : log1p(exp(z))
    }

    /// 1 / (1 + e⁻ᶻ), stable for large |z|.
    @inline(__always)
    public static func sigmoid(_ z: Double) -> Double {
        if z >= 0 { return 1 / (1 + exp(-z)) }
        let e = exp(z)
        return e / (1 + e)
    }
}

/// Solves small dense symmetric positive definite systems (the Newton step: at most a few hundred unknowns).
public enum Cholesky {
    /// The solution of `a · x = b` for row-major `a` (`size × size`), or nil when `a` is not positive definite.
    public static func solve(_ a: [Double], _ b: [Double], size n: Int) -> [Double]? {
        guard a.count == n * n, b.count == n else { return nil }
        var l = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0...i {
                var sum = a[i * n + j]
                for k in 0..<j { sum -= l[i * n + k] * l[j * n + k] }
                if i == j {
                    guard sum > 0, sum.isFinite else { return nil }
                    l[i * n + i] = sum.squareRoot()
                } else {
                    l[i * n + j] = sum / l[j * n + j]
                }
            }
        }
        var y = [Double](repeating: 0, count: n)
        for i in 0..<n {
            var sum = b[i]
            for k in 0..<i { sum -= l[i * n + k] * y[k] }
            y[i] = sum / l[i * n + i]
        }
        var x = [Double](repeating: 0, count: n)
        for i in stride(from: n - 1, through: 0, by: -1) {
            var sum = y[i]
            for k in (i + 1)..<n { sum -= l[k * n + i] * x[k] }
            x[i] = sum / l[i * n + i]
        }
        return x
    }
}
