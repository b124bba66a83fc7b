# frozen_string_literal: true

require "test_helper"

# The extension keeps to the C API that later Rubies keep: Ruby 3.4 and later have no package on
# the machines the suite runs on, so this is what stands for testing them. Ruby 3.3 deprecates
# the IO struct's fields ("with no replacement"); Ruby's deprecation list (ruby/ruby#15447)
# removes untyped data objects, rb_iterate, the taint API, rb_gc_force_recycle and others.
class CAPITest < HCTest::TestCase
  SOURCES = Dir[File.expand_path("../ext/heapcapture/*.{c,h}", __dir__)].freeze
  GONE = {
    "the IO struct's internals (rb_io_t, RFILE()->fptr)" => /\brb_io_t\b|\bRFILE\s*\(|->fptr\b/,
    "untyped data objects (Data_Wrap_Struct, Data_Make_Struct, struct RData)" =>
      /(?<!Typed)Data_(?:Wrap|Make|Get)_Struct|\bstruct\s+RData\b|\brb_data_object_(?:wrap|zalloc|alloc)\b/,
    "rb_iterate" => /\brb_iterate\b/,
    "the taint API" => /\brb_obj_(?:un)?taint|\bOBJ_TAINT|\bRUBY_FL_TAINT|\brb_tainted_str_new/,
    "rb_gc_force_recycle" => /\brb_gc_force_recycle\b/,
    "rb_clear_constant_cache" => /\brb_clear_constant_cache\b/,
    "rb_clone_setup, rb_dup_setup" => /\brb_(?:clone|dup)_setup\b/,
    "rb_complex_polar" => /\brb_complex_polar\b/
  }.freeze

  def test_the_extension_uses_no_c_api_that_later_rubies_removed
    refute_empty SOURCES
    found = SOURCES.flat_map do |path|
      File.foreach(path, encoding: "UTF-8").with_index(1).filter_map do |line, number|
        what = GONE.find { |_, pattern| line.match?(pattern) }&.first
        "#{File.basename(path)}:#{number}: #{what}: #{line.strip}" if what
      end
    end
    assert_empty found
  end
end
