# frozen_string_literal: true

# The pure C modules (every ext/heapcapture/*.c that is not a Ruby binding) are tested on their
# own, without Ruby, built with AddressSanitizer and UBSan. Each test/c/test_*.c is one program.
require "rbconfig"

C_TEST_DIR = "test/c"
C_BUILD_DIR = "test/c/build"
C_EXT_DIR = "ext/heapcapture"
C_LIBS = %w[libpq libcurl libcrypto zlib expat].freeze
# ISA-L is optional, as in extconf.rb: when installed, gzip_stream.c is built with it (and its
# test checks both engines); without it, zlib alone.
C_ISAL = system("pkg-config --exists libisal") &&
         File.exist?(File.join(`pkg-config --variable=includedir libisal`.strip, "isa-l/igzip_lib.h"))

def c_pure_modules
  FileList["#{C_EXT_DIR}/*.c"].exclude("#{C_EXT_DIR}/heapcapture.c", "#{C_EXT_DIR}/rb_*.c")
end

def c_pkg_flags(kind, isal: C_ISAL)
  flags = C_LIBS.map { |lib| `pkg-config --#{kind} #{lib} 2>/dev/null`.strip }
  flags << (kind == "cflags" ? "-DHC_HAVE_ISAL" : `pkg-config --libs libisal`.strip) if isal
  flags << "-I#{`pg_config --includedir`.strip}" if kind == "cflags" && system("pg_config >/dev/null 2>&1")
  flags << "-lpthread"
  flags.join(" ")
end

namespace :test do
  desc "Build the pure C modules' unit tests with ASan and UBSan and run them"
  task :c do
    mkdir_p C_BUILD_DIR
    cc = ENV.fetch("CC", "gcc")
    common = "-std=gnu11 -g -O1 -Wall -Wextra -Werror -fno-omit-frame-pointer " \
             "-fsanitize=address,undefined -fno-sanitize-recover=all -I#{C_EXT_DIR} -I#{C_TEST_DIR} "
    tests = FileList["#{C_TEST_DIR}/test_*.c"]
    abort "test:c: no C tests found in #{C_TEST_DIR}" if tests.empty?
    # [source, program, with ISA-L]: every test as the gem is built here; with ISA-L installed,
    # the gzip test once more without it, as the gem builds where there is none (Heroku).
    builds = tests.map { |src| [src, File.basename(src, ".c"), C_ISAL] }
    builds << ["#{C_TEST_DIR}/test_gzip_stream.c", "test_gzip_stream_zlib_only", false] if C_ISAL
    # [cflags, libs] with and without ISA-L, asked of pkg-config once each.
    flags = Hash.new { |h, isal| h[isal] = [c_pkg_flags("cflags", isal: isal), c_pkg_flags("libs", isal: isal)] }
    env = { "ASAN_OPTIONS" => "detect_leaks=1:abort_on_error=1", "UBSAN_OPTIONS" => "print_stacktrace=1" }
    passed = failed = 0
    builds.each do |src, name, isal|
      bin = File.join(C_BUILD_DIR, name)
      cflags, libs = flags[isal]
      sh "#{cc} #{common}#{cflags} -o #{bin} #{src} #{c_pure_modules.join(' ')} #{libs}"
      if system(env, bin, chdir: ".")
        passed += 1
      else
        failed += 1
        warn "test:c: #{bin} failed (exit #{$?.exitstatus.inspect})"
      end
    end
    puts "C test programs: #{passed} passed, #{failed} failed"
    abort "test:c: #{failed} C test program(s) failed" if failed.positive?
  end
end
