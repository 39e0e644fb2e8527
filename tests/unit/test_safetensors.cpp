// The safetensors reader on crafted files: a valid file of each supported dtype, then one test per defect a
// header can lie about (length, JSON, offsets, overlap, dtype), and the sharded-folder cases (index naming a
// missing shard, a tensor not where the index says, several files and no index).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "core/dtype.h"
#include "formats/safetensors.h"
#include "gguf_builder.h"
#include "test_util.h"

using namespace tern;
using namespace tern_test;

namespace {

// 8-byte little-endian header length, the header, the data section.
std::string st_bytes(const std::string& header, const std::string& data) { return le_u64(header.size()) + header + data; }

struct StTensor {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

// A valid file: tensors packed in order, header padded with spaces to a multiple of 8 (as the Python writer
// does) so that the data section is 8-byte aligned.
std::string st_file(const std::vector<StTensor>& ts, const std::string& metadata_json = "") {
  std::string h = "{";
  if (!metadata_json.empty()) h += "\"__metadata__\":" + metadata_json;
  std::string data;
  for (const auto& t : ts) {
    if (h.size() > 1) h += ",";
    std::string shape;
    for (int64_t d : t.shape) shape += (shape.empty() ? "" : ",") + std::to_string(d);
    h += "\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[" + shape + "],\"data_offsets\":[" +
         std::to_string(data.size()) + "," + std::to_string(data.size() + t.bytes.size()) + "]}";
    data += t.bytes;
  }
  h += "}";
  while (h.size() % 8) h += ' ';
  return st_bytes(h, data);
}

std::string write_tmp(const std::string& bytes, const std::string& tag = "") {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string p = temp_dir() + "/" + info->test_suite_name() + "." + info->name() + tag + ".safetensors";
  ::unlink(p.c_str());
  write_file(p, bytes);
  return p;
}

// Opens `bytes` and expects an error naming the file and containing every one of `parts`.
void expect_error(const std::string& bytes, std::initializer_list<std::string> parts, const std::string& tag = "") {
  const std::string path = write_tmp(bytes, tag);
  auto r = SafetensorsFile::open(path);
  ASSERT_FALSE(r.ok()) << "expected an error";
  const std::string& m = r.message();
  EXPECT_NE(m.find(path), std::string::npos) << "message does not name the file: " << m;
  for (const auto& p : parts) EXPECT_NE(m.find(p), std::string::npos) << "message lacks '" << p << "': " << m;
}

// A fresh empty folder under the test's temp dir.
std::string fresh_dir(const std::string& tag) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string d = temp_dir() + "/" + info->test_suite_name() + "." + info->name() + tag;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

const std::string kOneF32 = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";

}  // namespace

TEST(Safetensors, ReadsEveryFloatTypeAndMetadata) {
  const std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -0.5f};
  const std::vector<float> h = {0.5f, -1.0f, 2.0f, 65504.0f};
  const std::vector<float> b = {1.0f, -3.0f};
  const std::string bytes = st_file({{"a", "F32", {2, 3}, f32_bytes(a)},
                                     {"h", "F16", {4}, f16_bytes(h)},
                                     {"b", "BF16", {1, 2}, bf16_bytes(b)},
                                     {"empty", "F32", {0, 4}, ""}},
                                    R"({"format":"pt","note":"x"})");
  auto r = SafetensorsFile::open(write_tmp(bytes));
  ASSERT_TRUE(r.ok()) << r.message();
  const SafetensorsFile& f = r.value();
  EXPECT_EQ(f.tensors().size(), 4u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.data_offset() % 8, 0u);

  const SafetensorsTensor* ta = f.find("a");
  ASSERT_NE(ta, nullptr);
  auto va = f.view(*ta, "renamed");
  ASSERT_TRUE(va.ok()) << va.message();
  EXPECT_EQ(va->name, "renamed");
  EXPECT_EQ(va->dtype, DType::F32);
  EXPECT_EQ(va->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(va->nbytes, 24u);
  EXPECT_EQ(std::memcmp(va->data, a.data(), 24), 0);

  auto vh = f.view(*f.find("h"));
  ASSERT_TRUE(vh.ok());
  EXPECT_EQ(vh->dtype, DType::F16);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(load_element(DType::F16, vh->data, i), h[i]);
  auto vb = f.view(*f.find("b"));
  ASSERT_TRUE(vb.ok());
  EXPECT_EQ(vb->dtype, DType::BF16);
  EXPECT_EQ(load_element(DType::BF16, vb->data, 1), -3.0f);
  auto ve = f.view(*f.find("empty"));
  ASSERT_TRUE(ve.ok());
  EXPECT_EQ(ve->numel(), 0);
}

TEST(Safetensors, FileShorterThanTheLengthField) { expect_error("abc", {"too short"}); }

TEST(Safetensors, HeaderLengthLargerThanTheFile) {
  std::string bytes = st_bytes(kOneF32, std::string(8, '\0'));
  const uint64_t lie = bytes.size();  // one byte more than the header could possibly have
  std::memcpy(bytes.data(), &lie, 8);
  expect_error(bytes, {"header length " + std::to_string(lie), "larger than the file"});
}

TEST(Safetensors, HeaderIsNotJson) {
  expect_error(st_bytes(R"({"a":{"dtype":"F32",)", std::string(8, '\0')), {"not valid JSON"});
}

TEST(Safetensors, HeaderIsNotAnObject) { expect_error(st_bytes("[1,2,3]", ""), {"expected an object"}); }

TEST(Safetensors, OffsetsPastTheEnd) {
  expect_error(st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", std::string(8, '\0')),
               {"tensor 'a'", "[4, 12]", "past the end of the data section (8 bytes)"});
}

TEST(Safetensors, OffsetsOverlap) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  expect_error(st_bytes(h, std::string(12, '\0')), {"'a'", "'b'", "overlap"});
}

TEST(Safetensors, BeginAfterEnd) {
  expect_error(st_bytes(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", std::string(8, '\0')),
               {"tensor 'a'", "[8, 4]", "begin after they end"});
}

TEST(Safetensors, SpanDisagreesWithShape) {
  expect_error(st_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')),
               {"tensor 'a'", "span 8 bytes", "needs 12"});
}

TEST(Safetensors, BadShapeAndOffsetValues) {
  expect_error(st_bytes(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", std::string(8, '\0')),
               {"tensor 'a'", "-2", "not a non-negative integer"}, "neg");
  expect_error(st_bytes(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", std::string(8, '\0')),
               {"tensor 'a'", "2.5"}, "frac");
  expect_error(st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", std::string(8, '\0')),
               {"tensor 'a'", "data_offsets"}, "pair");
  expect_error(st_bytes(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0')),
               {"tensor 'a'", "'dtype'"}, "nodtype");
  expect_error(st_bytes(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
                        std::string(8, '\0')),
               {"tensor 'a'", "absurdly large"}, "huge");
}

TEST(Safetensors, UnknownDtype) {
  expect_error(st_bytes(R"({"a":{"dtype":"F12","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0')),
               {"tensor 'a'", "unknown dtype 'F12'"});
}

TEST(Safetensors, UnsupportedDtypeParsesButCannotBeViewed) {
  // I64 is a valid safetensors dtype (its bytes are checked), but the engine computes with floats only.
  const std::string path = write_tmp(st_file({{"ids", "I64", {2}, std::string(16, '\0')}}));
  auto r = SafetensorsFile::open(path);
  ASSERT_TRUE(r.ok()) << r.message();
  auto v = r->view(*r->find("ids"));
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.message().find(path), std::string::npos) << v.message();
  EXPECT_NE(v.message().find("tensor 'ids' has dtype I64"), std::string::npos) << v.message();
  EXPECT_NE(v.message().find("supported: F32, F16, BF16"), std::string::npos) << v.message();
}

TEST(Safetensors, MetadataMustHoldStrings) {
  expect_error(st_bytes(R"({"__metadata__":{"format":1}})", ""), {"'__metadata__'", "'format'", "expected a string"});
}

// ---------------------------------------------------------------------------------------------------------------
// Folders: one file, shards through the index, and what can go wrong with them.

TEST(SafetensorsDir, SingleFileAndShards) {
  const std::string d = fresh_dir("single");
  write_file(d + "/model.safetensors", st_file({{"x", "F32", {1}, le_f32(1.0f)}}));
  auto r = open_safetensors_dir(d);
  ASSERT_TRUE(r.ok()) << r.message();
  ASSERT_EQ(r->tensors.size(), 1u);
  EXPECT_EQ(r->tensor_of(r->tensors.at("x")).name, "x");

  const std::string s = fresh_dir("sharded");
  write_file(s + "/a.safetensors", st_file({{"x", "F32", {1}, le_f32(1.0f)}, {"y", "F32", {1}, le_f32(2.0f)}}));
  write_file(s + "/b.safetensors", st_file({{"z", "F32", {1}, le_f32(3.0f)}}));
  write_file(s + "/model.safetensors.index.json",
             R"({"metadata":{"total_size":12},"weight_map":{"x":"a.safetensors","y":"a.safetensors","z":"b.safetensors"}})");
  auto rs = open_safetensors_dir(s);
  ASSERT_TRUE(rs.ok()) << rs.message();
  EXPECT_EQ(rs->files.size(), 2u);
  ASSERT_EQ(rs->tensors.size(), 3u);
  const auto& z = rs->tensors.at("z");
  auto v = rs->file_of(z).view(rs->tensor_of(z));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(load_element(DType::F32, v->data, 0), 3.0f);
}

TEST(SafetensorsDir, IndexNamesAMissingShard) {
  const std::string d = fresh_dir("");
  write_file(d + "/a.safetensors", st_file({{"x", "F32", {1}, le_f32(1.0f)}}));
  write_file(d + "/model.safetensors.index.json", R"({"weight_map":{"x":"a.safetensors","y":"gone.safetensors"}})");
  auto r = open_safetensors_dir(d);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("model.safetensors.index.json"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("shard 'gone.safetensors'"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("'y'"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("does not exist"), std::string::npos) << r.message();
}

TEST(SafetensorsDir, IndexPointsAtTheWrongShard) {
  const std::string d = fresh_dir("");
  write_file(d + "/a.safetensors", st_file({{"x", "F32", {1}, le_f32(1.0f)}}));
  write_file(d + "/b.safetensors", st_file({{"y", "F32", {1}, le_f32(1.0f)}}));
  write_file(d + "/model.safetensors.index.json", R"({"weight_map":{"x":"b.safetensors"}})");
  auto r = open_safetensors_dir(d);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("tensor 'x'"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("has no such tensor"), std::string::npos) << r.message();
}

TEST(SafetensorsDir, IndexDefects) {
  const std::string d = fresh_dir("");
  write_file(d + "/a.safetensors", st_file({{"x", "F32", {1}, le_f32(1.0f)}}));
  write_file(d + "/model.safetensors.index.json", R"({"weight_map":{"x":"a.safetensors")");
  auto r = open_safetensors_dir(d);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("not valid JSON"), std::string::npos) << r.message();
  write_file(d + "/model.safetensors.index.json", R"({"metadata":{}})");
  r = open_safetensors_dir(d);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("'weight_map'"), std::string::npos) << r.message();
  write_file(d + "/model.safetensors.index.json", R"({"weight_map":{"x":"../a.safetensors"}})");
  r = open_safetensors_dir(d);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("not a file name inside the folder"), std::string::npos) << r.message();
}

TEST(SafetensorsDir, NoFileOrSeveralWithoutIndex) {
  const std::string d = fresh_dir("");
  auto r = open_safetensors_dir(d);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("no model.safetensors"), std::string::npos) << r.message();
  write_file(d + "/a.safetensors", st_file({{"x", "F32", {1}, le_f32(1.0f)}}));
  write_file(d + "/b.safetensors", st_file({{"y", "F32", {1}, le_f32(1.0f)}}));
  r = open_safetensors_dir(d);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("2 *.safetensors files but no model.safetensors.index.json"), std::string::npos)
      << r.message();
}

TEST(SafetensorsDir, ShardThatLiesIsReportedWithItsPath) {
  const std::string d = fresh_dir("");
  write_file(d + "/a.safetensors", st_bytes(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", ""));
  write_file(d + "/model.safetensors.index.json", R"({"weight_map":{"x":"a.safetensors"}})");
  auto r = open_safetensors_dir(d);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find(d + "/a.safetensors"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("past the end"), std::string::npos) << r.message();
}
