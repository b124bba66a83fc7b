# frozen_string_literal: true

require "test_helper"

# The extension keeps to the C API that later Rubies keep: Ruby 4.0 and later have no package on
# the machines the suite runs on, so this is what stands for testing them. Ruby 3.3 deprecates
# the IO struct's fields ("with no replacement"); Ruby's deprecation list (ruby/ruby#15447)
# removes untyped data objects, rb_iterate, the taint API, rb_gc_force_recycle and others.
class CAPITest < HCTest::TestCase
  SOURCES = Dir[File.expand_path("../../ext/heapcapture/*.{c,h}", __dir__)].freeze
  GONE = {
    "the IO struct's internals (rb_io_t, RFILE()->fptr)" => /\brb_io_t\b|\bRFILE\s*\(|->fptr\b/,
    "untyped data objects (Data_Wrap_Struct, Data_Make_Struct, struct RData)" =>
      /(?<!Typed)Data_(?:Wrap|Make|Get)_Struct|\bstruct\s+RData\b|\brb_data_object_(?:wrap|zalloc|alloc)\b/,
    "rb_iterate" => /\brb_iterate\b/,
    "the taint API" => /\brb_obj_(?:un)?taint|\bOBJ_TAINT|\bRUBY_FL_TAINT|\brb_tainted_str_new/,
    "rb_gc_force_recycle" => /\brb_gc_force_recycle\b/,
    "rb_clear_constant_cache" => /\brb_clear_constant_cache\b/,
    "rb_clone_setup, rb_dup_setup" => /\brb_(?:clone|dup)_setup\b/,
    "rb_complex_polar" => /\brb_complex_polar\b/,
    # Ruby 4.0 deprecates ObjectSpace._id2ref (Feature #15408), 4.1 removes it (Feature #22135), and
    # it can return an unrelated live object that took the slot (Bug #22200).
    "ObjectSpace._id2ref" => /"_id2ref"|\bid2ref\s*\(/,
    # Ruby 4.0 stores an object's id in the object (ruby/ruby#13159: asking changes its shape and
    # size; IMEMOs cannot have one), and rb_obj_id in a NEWOBJ hook is unsafe there (Bug #21710).
    "rb_obj_id" => /\brb_obj_id\s*\(|\bFL_SEEN_OBJ_ID\b/
  }.freeze
  # Ruby 4.1 removes the old postponed-job functions (its NEWS, Feature #21768): they may stay only
  # as the fallback for Rubies without rb_postponed_job_preregister (3.1, 3.2).
  OLD_POSTPONED = /\brb_postponed_job_register(?:_one)?\s*\(/
  PREREGISTER = "HAVE_RB_POSTPONED_JOB_PREREGISTER"

  # The one exception, in rb_dump_shared.c between its pragmas: the dump IO's buffers. No API sets an IO's
  # buffer size (hc_dump_pipe_io_buffer; extconf checks the field is there, else it is not used),
  # and the FILE dump_all writes through from Ruby 3.4 on is only reached through the IO struct
  # (hc_dump_pipe_io_stdio_buffer, rb_io_stdio_file).
  EXCEPTION = ["rb_dump_shared.c", "the IO struct's internals (rb_io_t, RFILE()->fptr)"].freeze

  def test_the_extension_uses_no_c_api_that_later_rubies_removed
    refute_empty SOURCES
    found = SOURCES.flat_map do |path|
      excepted = false
      File.foreach(path, encoding: "UTF-8").with_index(1).filter_map do |line, number|
        excepted = true if line.start_with?("#pragma GCC diagnostic push")
        excepted = false if line.start_with?("#pragma GCC diagnostic pop")
        what = GONE.find { |_, pattern| line.match?(pattern) }&.first
        next if excepted && EXCEPTION == [File.basename(path), what]

        "#{File.basename(path)}:#{number}: #{what}: #{line.strip}" if what
      end
    end
    assert_empty found
  end

  def test_the_old_postponed_job_functions_are_only_the_fallback_for_rubies_before_3_3
    found = SOURCES.flat_map do |path|
      branch = nil # :have or :fallback inside #ifdef PREREGISTER ... #else ... #endif
      File.foreach(path, encoding: "UTF-8").with_index(1).filter_map do |line, number|
        case line
        when /\A#\s*if(?:def)?\s.*#{PREREGISTER}/ then branch = :have
        when /\A#\s*else\b/ then branch = :fallback if branch == :have
        when /\A#\s*endif\b/ then branch = nil
        end
        "#{File.basename(path)}:#{number}: #{line.strip}" if line.match?(OLD_POSTPONED) && branch != :fallback
      end
    end
    assert_empty found, "outside the #else of #ifdef #{PREREGISTER}"
  end

  def test_the_exception_is_the_two_buffer_functions
    text = File.read(File.expand_path("../../ext/heapcapture/rb_dump_shared.c", __dir__), encoding: "UTF-8")
    block = text[/^#pragma GCC diagnostic push\n(.*?)^#pragma GCC diagnostic pop/m, 1]
    assert block, "rb_dump_shared.c has the one excepted block"
    assert_equal %w[hc_dump_pipe_io_buffer hc_dump_pipe_io_stdio_buffer], block.scan(/^[a-z].*?\b(hc_\w+)\(/).flatten
    assert_equal 1, SOURCES.sum { |path| File.read(path, encoding: "UTF-8").scan("#pragma GCC diagnostic push").size }
  end
end
