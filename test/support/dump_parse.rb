# frozen_string_literal: true

require "json"
require "zlib"

module HCTest
  # What a heap dump holds, tallied in Ruby (JSON.parse of every line): what the C summary
  # (heap_summary.c) must equal. Sites are {[file, line] => [objects, memsize]}, site_references
  # {[file, line] => references held}, site_sampled {[file, line] => lines with a sample weight}
  # (a line the sampled tracer annotated with "sample_weight" W counts W times in its site's
  # objects, memsize and references: an estimate; every other figure counts it once), holders
  # [[address, references, memsize]] of every object holding one, strings {value => [copies,
  # memsize]} of every STRING with a value.
  module DumpParse
    module_function

    # The tallies, the slow obvious way: every line of the dump (plain or .gz) through JSON.parse.
    def tallies(path)
      r = { "lines" => 0, "objects" => 0, "memsize" => 0, "roots" => 0, "invalid_lines" => 0, "types" => {},
            "generations" => {}, "sites" => {}, "references" => 0, "site_references" => Hash.new(0), "holders" => [],
            "strings" => {}, "site_sampled" => Hash.new(0) }
      add = lambda do |map, key, memsize|
        tally = map[key] ||= { "objects" => 0, "memsize" => 0 }
        tally["objects"] += 1
        tally["memsize"] += memsize
      end
      each_line(path) do |line|
        line = line.chomp
        next if line.empty?

        r["lines"] += 1
        record = begin
          JSON.parse(line.dup.force_encoding("UTF-8"))
        rescue JSON::ParserError
          nil
        end
        next r["invalid_lines"] += 1 unless record.is_a?(Hash)
        next (r["roots"] += 1 if record["type"] == "ROOT") unless record.key?("address")

        memsize = record["memsize"].is_a?(Integer) ? record["memsize"] : 0
        r["objects"] += 1
        r["memsize"] += memsize
        add.call(r["types"], record["type"].to_s, memsize)
        add.call(r["generations"], record["generation"].to_s, memsize) if record["generation"].is_a?(Integer)
        refs = record["references"].is_a?(Array) ? record["references"].size : 0
        r["references"] += refs
        r["holders"] << [record["address"], refs, memsize] if refs.positive?
        if record["type"] == "STRING" && record["value"].is_a?(String)
          copies = r["strings"][record["value"]] ||= [0, 0]
          copies[0] += 1
          copies[1] += memsize
        end
        next unless record["file"].is_a?(String)

        key = [record["file"], record["line"].is_a?(Integer) ? record["line"] : 0]
        weight = weight(record)
        site = r["sites"][key] ||= [0, 0]
        site[0] += weight || 1
        site[1] += memsize * (weight || 1)
        r["site_references"][key] += refs * (weight || 1)
        r["site_sampled"][key] += 1 if weight
      end
      r
    end

    # The allocations a sampled site's line stands for (its "sample_weight", at most 2**32 - 1), or
    # nil for an exact one (none, or 0).
    def weight(record)
      weight = record["sample_weight"]
      weight.is_a?(Integer) && weight.positive? ? [weight, (2**32) - 1].min : nil
    end

    def each_line(path, &block)
      if path.end_with?(".gz")
        Zlib::GzipReader.open(path) { |gz| gz.each_line { |line| block.call(line.b) } }
      else
        File.foreach(path, mode: "rb", &block)
      end
    end

    # The top sites as the C summary orders them: by memsize, then objects, file, line.
    def top_sites(tallies, count)
      sites = tallies["sites"].map do |(file, line), (objects, memsize)|
        site = { "file" => file, "line" => line, "objects" => objects, "memsize" => memsize,
                 "references" => tallies["site_references"][[file, line]] }
        sampled = tallies["site_sampled"][[file, line]]
        sampled.positive? ? site.merge("estimated" => true, "sampled" => sampled) : site
      end
      sites.sort_by { |s| [-s["memsize"], -s["objects"], s["file"], s["line"]] }.first(count)
    end
  end
end
