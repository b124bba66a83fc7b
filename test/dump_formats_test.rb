# frozen_string_literal: true

require "test_helper"
require_relative "support/heap_graph_reference"

# Dump formats of Rubies the suite cannot run. test/fixtures/dumps/ruby-4.0-fields.ndjson is
# HAND-WRITTEN from ruby/ruby's ext/objspace/objspace_dump.c and gc/default/default.c at v4.0.0
# (553f1675f3), not made by a Ruby 4.0: "flags" with integers ("age", "object_id") and the new
# "remembered" and "shareable", a "global_symbols" root, and what 4.0 changes for a retainer: a
# String's instance variables live in a fields object (IMEMO "fields", whose "class" is its owner)
# that the String references, and that references their values. The summary, the retention
# analysis and path read it as the plain-Ruby reference does, and the path goes through the
# fields object.
class DumpFormatsTest < HCTest::TestCase
  FIELDS = File.expand_path("fixtures/dumps/ruby-4.0-fields.ndjson", __dir__)
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
