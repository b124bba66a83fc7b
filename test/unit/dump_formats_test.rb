# frozen_string_literal: true

require "test_helper"
require_relative "../support/heap_graph_reference"
require "open3"
require "json"

# Dump formats of Rubies the suite cannot run. test/fixtures/dumps/ruby-4.0-fields.ndjson is
# HAND-WRITTEN from ruby/ruby's ext/objspace/objspace_dump.c and gc/default/default.c at v4.0.0
# (553f1675f3), not made by a Ruby 4.0: "flags" with integers ("age", "object_id") and the new
# "remembered" and "shareable", a "global_symbols" root, and what 4.0 changes for a retainer: a
# String's instance variables live in a fields object (IMEMO "fields", whose "class" is its owner)
# that the String references, and that references their values. The summary, the retention
# analysis and path read it as the plain-Ruby reference does, and the path goes through the
# fields object.
#
# test/fixtures/dumps/ruby-X.Y-small.ndjson.gz are REAL dumps, each made by that Ruby with
# test/fixtures/dumps/make.rb (a fresh Ruby whose constant Hash holds 20 strings): every leg of
# the suite reads every Ruby's, as a newer CLI reads an app's dump of an older Ruby or the reverse.
class DumpFormatsTest < HCTest::TestCase
  ROOT = HCTest::ROOT
  SMALL = Dir[File.expand_path("../fixtures/dumps/ruby-*-small.ndjson.gz", __dir__)].sort.freeze
  MAKE = "fixtures/dumps/make.rb"
  VALUE_LINE = File.foreach(File.join(ROOT, "test", MAKE)).find_index { |l| l.start_with?("VALUE_LINE =") } + 2

  def test_each_rubys_dump_reads_as_the_plain_ruby_reference_has_it
    assert_equal %w[3.1 3.4], SMALL.map { |path| path[/ruby-([\d.]+)-small/, 1] }, "the Rubies with a fixture"
    SMALL.each do |path|
      ruby = path[/ruby-([\d.]+)-small/, 1]
      summary = HeapCapture::Summary.of_file(path, strings: false)
      reference = HeapGraphReference.new(path)
      assert_equal 0, reference.invalid_lines, ruby
      assert_equal "computed", summary["retention"], ruby
      assert_equal [reference.retained, reference.garbage, reference.own],
                   summary.values_at("retained", "garbage", "own"), "#{ruby}: retained, garbage, heapcapture's own"
      values = []
      reference.each_record { |r| values << r.address if r.type == "STRING" && r.file&.end_with?(MAKE) && r.line == VALUE_LINE }
      assert_equal 20, values.size, "#{ruby}: the 20 values, at #{MAKE}:#{VALUE_LINE}"
      path_to = HeapCapture::Summary.paths_of_file(path, address: Integer(values.first)).first
      assert_equal values.first, path_to["path"].last["address"], ruby
      assert_equal reference.path_length(values.first) + 1, path_to["path_length"], "#{ruby}: a shortest path"
      site = summary["sites"].find { |s| s["file"].end_with?(MAKE) && s["line"] == VALUE_LINE }
      assert site, "#{ruby}: the values' site"
      assert_equal reference.by_site.dig([site["file"], VALUE_LINE], "objects"), site["objects"], "#{ruby}: its objects"
      out, err, status = Open3.capture3(RbConfig.ruby, "-I#{ROOT}/lib", "#{ROOT}/exe/heapcapture", "diff", path, path, "--json")
      assert status.success?, err
      assert_equal 0, JSON.parse(out)["objects"], "#{ruby}: a dump against itself has nothing new"
    end
  end

  FIELDS = File.expand_path("../fixtures/dumps/ruby-4.0-fields.ndjson", __dir__)
  OWNER = "0x7f0000000100"
  FIELDS_OBJECT = "0x7f0000000200"
  VALUE = "0x7f0000000210"

  def test_ruby_4_0s_fields_object_is_a_hop_between_an_object_and_its_instance_variables
    summary = HeapCapture::Summary.of_file(FIELDS, strings: false)
    reference = HeapGraphReference.new(FIELDS)
    assert_equal "computed", summary["retention"]
    assert_equal 8, summary["objects"]
    assert_equal({ "objects" => 1, "memsize" => 40 }, summary["types"]["IMEMO"].slice("objects", "memsize"))
    assert_equal reference.retained, summary["retained"]
    assert_equal reference.garbage, summary["garbage"]
    assert_equal({ "objects" => 1, "memsize" => 2000 }, summary["garbage"])
    # the owner keeps itself, its fields object and the 1 KB value: 40 + 40 + 1065
    assert_equal [1145, 3], reference.retained_size(OWNER)
    owner = summary["retainers"].find { |r| r["address"] == OWNER }
    assert_equal 1145, owner["retained_memsize"], summary["retainers"]
    # the fields object's "class" is its owner, no class: it is in no class's row
    assert_equal %w[String Symbol], summary["classes"].map { |c| c["class"] }.sort

    paths = HeapCapture::Summary.paths_of_file(FIELDS, address: Integer(VALUE))
    hops = paths.first["path"]
    assert_equal [nil, "0x7f00000000a0", OWNER, FIELDS_OBJECT, VALUE], hops.map { |h| h["address"] }
    assert_equal "vm", hops.first["root"]
    assert_equal "fields", hops[3]["imemo_type"]
    assert_equal reference.path_length(VALUE) + 1, paths.first["path_length"], "the reference counts the hops after the root"
  end
end
