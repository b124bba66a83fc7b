# frozen_string_literal: true

# The drawing library the HTML report inlines (`heapcapture report DUMP --html FILE`): d3-flame-graph
# and the d3 modules it needs, shipped in the gem under lib/heapcapture/report_page/vendor/ so that
# nothing is fetched when a report is written. `rake vendor:report_page` makes those files again
# from the list below, the one place versions are named: each package fetched with `npm pack` into
# a temporary directory, its tarball checked against the integrity pinned here, its UMD build taken.
require "digest"
require "json"
require "tmpdir"
require "zlib"

module ReportPageVendor
  DIR = "lib/heapcapture/report_page/vendor"

  # In dependency order: each UMD build adds to the global `d3` what the ones after it look up
  # there (internmap alone has its own global, which d3-array reads). d3-flame-graph last: its
  # global `flamegraph` is a namespace, the chart is `flamegraph.default()`. The d3 modules are
  # those d3 7.9.0 was released with: exact versions, as npm would otherwise take the newest.
  # [name, version, integrity of its tarball, its UMD build]
  PACKAGES = [
    ["internmap", "2.0.3",
     "sha512-5Hh7Y1wQbvY5ooGgPbDaL5iYLAPzMTUrjMulskHLH6wnv/A+1q5rgEaiuqEjB+oxGXIVZs1FF+R/KPN3ZSQYYg=="],
    ["d3-array", "3.2.4",
     "sha512-tdQAmyA18i4J7wprpYq8ClcxZy3SC31QMeByyCFyRt7BVHdREQZ5lpzoe5mFEYZUWe+oq8HBvk9JjpibyEV4Jg=="],
    ["d3-dispatch", "3.0.1",
     "sha512-rzUyPU/S7rwUflMyLc1ETDeBj0NRuHKKAcvukozwhshr6g6c5d8zh4c2gQjY2bZ0dXeGLWc1PF174P2tVvKhfg=="],
    ["d3-ease", "3.0.1",
     "sha512-wR/XK3D3XcLIZwpbvQwQ5fK+8Ykds1ip7A2Txe0yxncXSdq1L9skcG7blcedkOX+ZcgxGAmLX1FrRGbADwzi0w=="],
    ["d3-format", "3.1.0",
     "sha512-YyUI6AEuY/Wpt8KWLgZHsIU86atmikuoOmCfommt0LYHiQSPjvX2AcFc38PX0CBpr2RCyZhjex+NS/LPOv6YqA=="],
    ["d3-hierarchy", "3.1.2",
     "sha512-FX/9frcub54beBdugHjDCdikxThEqjnR93Qt7PvQTOHxyiNCAlvMrHhclk3cD5VeAaq9fxmfRp+CnWw9rEMBuA=="],
    ["d3-color", "3.1.0",
     "sha512-zg/chbXyeBtMQ1LbD/WSoW2DpC3I0mpmPdW+ynRTj/x2DAWYrIY7qeZIHidozwV24m4iavr15lNwIwLxRmOxhA=="],
    ["d3-interpolate", "3.0.1",
     "sha512-3bYs1rOD33uo8aqJfKP3JWPAibgw8Zm2+L9vBKEHJ2Rg+viTR7o5Mmv5mZcieN+FRYaAOWX5SJATX6k1PWz72g=="],
    ["d3-time", "3.1.0",
     "sha512-VqKjzBLejbSMT4IgbmVgDjpkYrNWUYJnbCGo874u7MMKIWsILRX+OpX/gTk8MqjpT1A/c6HY2dCA77ZN0lkQ2Q=="],
    ["d3-time-format", "4.1.0",
     "sha512-dJxPBlzC7NugB2PDLwo9Q8JiTR3M3e4/XANkreKSUxF8vvXKqm1Yfq4Q5dl8budlunRVlUUaDUgFt7eA8D6NLg=="],
    ["d3-scale", "4.0.2",
     "sha512-GZW464g1SH7ag3Y7hXjf8RoUuAFIqklOAq3MRl4OaWabTFJY9PN/E1YklhXLh+OQ3fM9yS2nOkCoS+WLZ6kvxQ=="],
    ["d3-selection", "3.0.0",
     "sha512-fmTRWbNMmsmWq6xJV8D19U/gw/bwrHfNXxrIN+HfZgnzqTHp9jOmKMhsTUjXOJnZOdZY9Q28y4yebKzqDKlxlQ=="],
    ["d3-timer", "3.0.1",
     "sha512-ndfJ/JxxMd3nw31uyKoY2naivF+r29V+Lc0svZxe1JvvIRmi8hUsrMvdOwgS1o6uBHmiz91geQ0ylPP0aj1VUA=="],
    ["d3-transition", "3.0.1",
     "sha512-ApKvfjsSR6tg06xrL434C0WydLr7JewBB3V+/39RMHsaXTOG0zmt/OAXeng5M5LBm0ojmxJrpomQVZ1aPvBL4w=="],
    ["d3-flame-graph", "5.0.0",
     "sha512-ALZQ4at8Dex8HCoj9D5p5TY6gLNEc2vAZAy+NKO/6GLEfhYJmGxYuRClO6RPoplndyOHxQTPipdlGeMggkjtnQ==",
     "dist/d3-flamegraph.umd.min.js"]
  ].freeze
  CSS = "dist/d3-flamegraph.css" # d3-flame-graph's (its UMD build also adds the same rules itself)

  # What would end an inline <script> early or change how the HTML parser reads it.
  UNSAFE_IN_SCRIPT = [%r{</script}i, /<!--/].freeze
  SOURCE_MAP = %r{^\s*//[#@] sourceMappingURL=\S*\s*\z}

  module_function

  def fail!(message)
    raise "vendor:report_page: #{message}"
  end

  # The tarball of name@version in dir, checked against the pinned integrity; its unpacked root.
  def fetch(dir, name, version, integrity)
    out = IO.popen(["timeout", "120", "npm", "pack", "--json", "--silent", "#{name}@#{version}"],
                   chdir: dir, err: %i[child out], &:read)
    fail!("npm pack #{name}@#{version} failed: #{out}") unless $?.success?
    tarball = File.join(dir, JSON.parse(out).first.fetch("filename"))
    actual = "sha512-#{[Digest::SHA512.file(tarball).digest].pack('m0')}" # base64, as npm writes it
    fail!("#{name}@#{version}: tarball integrity #{actual}, pinned #{integrity}") unless actual == integrity

    root = File.join(dir, "#{name}-#{version}")
    Dir.mkdir(root)
    system("timeout", "60", "tar", "-xzf", tarball, "-C", root, exception: true)
    File.join(root, "package")
  end

  # The build's text, without a trailing source map comment (the map is not shipped), ending with
  # a semicolon so the next file cannot continue its last expression.
  def script(root, name, path)
    text = File.read(File.join(root, path), encoding: "UTF-8").sub(SOURCE_MAP, "").rstrip
    UNSAFE_IN_SCRIPT.each { |re| fail!("#{name} #{path} holds #{re.source}: it cannot be inlined") if text.match?(re) }
    fail!("#{name} #{path} still names a source map") if text.include?("sourceMappingURL")
    text.end_with?(";") ? text : "#{text};"
  end

  def stylesheet(root)
    text = File.read(File.join(root, CSS), encoding: "UTF-8").sub(%r{/\*# sourceMappingURL=.*?\*/\s*\z}, "").rstrip
    fail!("#{CSS} holds </style: it cannot be inlined") if text.match?(%r{</style}i)
    text
  end

  def license_text(root, name)
    file = Dir.glob(File.join(root, "{LICENSE,LICENCE,LICENSE.*,LICENCE.*}"), File::FNM_CASEFOLD).first
    fail!("#{name} has no LICENSE file") unless file
    File.read(file, encoding: "UTF-8").strip
  end

  def run
    Dir.mktmpdir("heapcapture-vendor-") do |dir|
      scripts = []
      licenses = []
      versions = []
      css = nil
      PACKAGES.each do |name, version, integrity, build|
        root = fetch(dir, name, version, integrity)
        meta = JSON.parse(File.read(File.join(root, "package.json")))
        fail!("#{name}: package.json says #{meta['version']}") unless meta["version"] == version

        build ||= "dist/#{name}.min.js"
        scripts << "/* #{name} #{version} (#{meta['license']}), #{build} */\n#{script(root, name, build)}\n"
        licenses << "## #{name} #{version}\n\nLicence: #{meta['license']}\n\n```\n#{license_text(root, name)}\n```\n"
        versions << "#{name} #{version} #{integrity}\n"
        css = stylesheet(root) if name == "d3-flame-graph"
      end
      write(scripts, css, licenses, versions)
    end
  end

  def write(scripts, css, licenses, versions)
    FileUtils.mkdir_p(DIR)
    File.write(File.join(DIR, "flamegraph.js"), scripts.join)
    # a file that does not parse as one script (a build that ended mid-expression) fails here
    system("timeout", "60", "node", "--check", File.join(DIR, "flamegraph.js"), exception: true)
    File.write(File.join(DIR, "flamegraph.css"), "#{css}\n")
    File.write(File.join(DIR, "LICENSES.md"), <<~MD + licenses.join("\n"))
      # Licences of the vendored drawing library

      `flamegraph.js` and `flamegraph.css` are built by `rake vendor:report_page` (rakelib/vendor.rake)
      from these npm packages, unmodified except for a comment naming each; `VERSIONS` lists their
      tarballs' integrity.

    MD
    File.write(File.join(DIR, "VERSIONS"), versions.join)
    js = File.binread(File.join(DIR, "flamegraph.js"))
    puts "vendor:report_page: #{DIR}/flamegraph.js #{js.bytesize} bytes (#{Zlib.gzip(js, level: 9).bytesize} gzipped)"
  end
end

namespace :vendor do
  desc "Fetch the HTML report's pinned drawing library (d3-flame-graph and d3 modules) into #{ReportPageVendor::DIR}"
  task(:report_page) { ReportPageVendor.run }
end
