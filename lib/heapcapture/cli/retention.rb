# frozen_string_literal: true

module HeapCapture
  class CLI
    # How the retention analysis reads to a person (report's sections, path's hops): what is held
    # and what only awaits GC, who holds it, the suspects and their paths from a root.
    class Retention
      def initialize(out)
        @out = out
      end

      # "  retained ...; awaiting GC ..." under the report's first line (or why there is no analysis).
      def totals(summary)
        unless summary["retained"]
          reason = summary["retention"] || "not in a capture's stored summary (without --stored, report reads the dump)"
          return @out.puts("  retention: #{reason}")
        end

        held, garbage, own = summary.values_at("retained", "garbage", "own")
        @out.puts "  retained (reachable from a root): #{pair(held)}"
        @out.puts "  awaiting GC (reachable from no root: freed by the next GC, not held): #{pair(garbage)}"
        if own && own["objects"].positive?
          @out.puts "  heapcapture's own (counted in retained, kept out of the lists below): #{pair(own)}"
        end
        missing = summary["missing_references"].to_i
        @out.puts "  #{count(missing)} reference(s) to objects not in the dump (left out)" if missing.positive?
      end

      def print(summary)
        sites(summary["sites"], summary["site_count"])
        classes(summary["classes"])
        retainers(summary["retainers"])
        grouped("retained by class (instances not held by another of their class)", summary["retained_by_class"]) do |g|
          g["class"]
        end
        grouped("retained by allocation site (objects not held by another of their site)", summary["retained_by_site"]) do |g|
          "#{g['file']}:#{g['line']}"
        end
        suspects(summary["suspects"])
      end

      def sites(rows, total, title: "top sites by retained memsize")
        @out.puts "\n#{title} (#{count(total)} sites in all; a site is known for objects " \
                  "allocated with tracing on; awaiting GC: what the next GC frees):"
        return @out.puts("  (none: no object carries its allocation site)") if rows.empty?

        @out.puts format("  %14s %12s %14s  %s", "retained", "objects", "awaiting GC", "file:line")
        rows.each do |s|
          @out.puts format("  %14s %12s %14s  %s:%d%s", human(s, "retained_memsize"), count(s["retained_objects"], s),
                           human(s, "garbage_memsize"), s["file"], s["line"], sampled(s))
        end
        estimates(rows)
      end

      def classes(rows, title: "top classes by retained memsize")
        @out.puts "\n#{title} (their instances' own memsize):"
        return @out.puts("  (none: no object's class is named in the dump)") if rows.empty?

        @out.puts format("  %14s %12s %14s  %s", "retained", "objects", "awaiting GC", "class")
        rows.each do |c|
          @out.puts format("  %14s %12s %14s  %s", Size.human(c["retained_memsize"]), count(c["retained_objects"]),
                           Size.human(c["garbage_memsize"]), c["class"])
        end
      end

      def retainers(rows)
        @out.puts "\nlargest retainers (what each object alone keeps alive, itself included):"
        return @out.puts("  (none: no root reaches an object)") if rows.empty?

        @out.puts format("  %14s %12s %12s  %s", "retains", "objects", "own memsize", "object")
        rows.each do |r|
          @out.puts format("  %14s %12s %12s  %s", Size.human(r["retained_memsize"]), count(r["retained_objects"]),
                           Size.human(r["memsize"]), self.class.object(r))
        end
      end

      def grouped(title, rows)
        @out.puts "\n#{title}:"
        return @out.puts("  (none)") if rows.empty?

        @out.puts format("  %14s %12s %10s", "retains", "objects", "instances")
        rows.each do |g|
          @out.puts format("  %14s %12s %10s  %s%s", human(g, "retained_memsize"), count(g["retained_objects"], g),
                           count(g["instances"], g), yield(g), sampled(g))
        end
        estimates(rows)
      end

      # "  (40 sampled)" after a row whose figures are estimates (ResultText.approx), and once under a
      # table that has one, what the "~" means.
      def sampled(row) = row["estimated"] ? "  (#{ResultText.sampled(row)})" : ""

      def estimates(rows)
        return unless rows.any? { |row| row["estimated"] }

        @out.puts "  ~: an estimate: the objects the sampled tracer saw (N sampled), each counted as the allocations " \
                  "it stands for (its sampling weight); a --trace-for window gives exact figures"
      end

      def suspects(rows)
        @out.puts "\nleak suspects (holding at least the suspect share of the retained heap):"
        return @out.puts("  (none)") if rows.empty?

        rows.each do |s|
          @out.puts "  #{self.class.suspect_line(s)}"
          @out.puts "    path from a root:"
          self.class.path_lines(s["path"], s["path_length"]).each { |line| @out.puts "      #{line}" }
        end
      end

      def self.suspect_line(suspect) = ResultText.suspect_line(suspect)
      def self.object(held) = ResultText.object(held)

      # A path's hops, one a line, root first; where the dump's path was longer than the hops
      # written (heap_retention.h: the first and last are kept), a line says how many are left out.
      def self.path_lines(hops, length)
        lines = hops.map { |hop| hop(hop) }
        lines.insert(hops.size / 2, "... (#{length - hops.size} hops not shown)") if hops.size < length
        lines
      end

      # One hop of a path: "ROOT vm" or the object with its memsize and what it retains.
      def self.hop(hop)
        return "ROOT #{hop['root']}" if hop["root"]

        "#{object(hop)}  memsize #{Size.human(hop['memsize'])}, retains #{Size.human(hop['retained_memsize'])}"
      end

      private

      def pair(tally) = "#{count(tally['objects'])} objects, #{Size.human(tally['memsize'])} memsize"
      # number with its thousands marked, "~" before it when figures (a row) are estimates
      def count(number, figures = {}) = ResultText.approx(figures, Size.count(number), number)
      def human(figures, key) = ResultText.approx(figures, Size.human(figures[key]), figures[key])
    end
  end
end
