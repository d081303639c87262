// Image folders: header checks (bad files of every kind), decoding to the network's input
// (colour order, grey and RGBA files, resize then centre-crop), folder scanning and class ids.
#include <torch/torch.h>

#include "data/dataset.h"
#include "data/image_decode.h"
#include "data/image_folder.h"
#include "data/image_header.h"
#include "image_fixtures.h"
#include "test_util.h"

using namespace centerloss::trainer;

namespace {

std::vector<uint8_t> decode(const std::string& path, int64_t channels, int64_t height, int64_t width) {
  std::vector<uint8_t> out(static_cast<size_t>(channels * height * width));
  decode_image_file(path, {channels, height, width}, out.data());
  return out;
}

}  // namespace

TEST(ImageHeader, ReadsTheSizeOfEachFormat) {
  TempDir dir;
  const cv::Mat image = fixtures::shape_image(1, 0, 30, 50);
  for (const std::string ext : {".png", ".jpg", ".bmp"}) {
    fixtures::write_image(dir / ("a" + ext), image);
    const ImageHeader h = read_image_header(dir / ("a" + ext));
    EXPECT_EQ(h.height, 30) << ext;
    EXPECT_EQ(h.width, 50) << ext;
  }
  // A JPEG with a big EXIF-like segment before its frame header: found by walking the segments.
  std::vector<uchar> jpeg;
  cv::imencode(".jpg", image, jpeg);
  std::string bytes(jpeg.begin(), jpeg.end());
  bytes.insert(2, std::string("\xFF\xE1\xFF\xF0", 4) + std::string(0xFFF0 - 2, 'x'));
  fixtures::write_bytes(dir / "exif.jpg", bytes);
  EXPECT_EQ(read_image_header(dir / "exif.jpg").width, 50);
  EXPECT_NO_THROW(check_image_bytes(bytes, "exif.jpg"));
}

TEST(ImageHeader, BadFilesAreRefusedByNameBeforeDecoding) {
  TempDir dir;
  const fixtures::BadFiles bad = fixtures::write_bad_files(dir.path());
  expect_error<BadImageError>([&] { read_image_header(bad.empty); }, "image '" + bad.empty + "': empty file");
  expect_error<BadImageError>([&] { read_image_header(bad.text_as_jpeg); }, "not a PNG, JPEG or BMP image");
  expect_error<BadImageError>([&] { read_image_header(bad.bomb); },
                              "header claims 60000x60000 pixels (3600 megapixels), over the limit of 64 megapixels");
  // Within the limit, the header is accepted (8000 x 8000 = 64 megapixels exactly).
  fixtures::write_bytes(dir / "big.png", fixtures::bomb_png(8000, 8000));
  EXPECT_EQ(read_image_header(dir / "big.png").width, 8000);
  // Sides whose product overflows int64 (found by fuzz_image): refused, not wrapped around.
  fixtures::write_bytes(dir / "huge.png", fixtures::bomb_png(0xFFFFFFFFu, 0xFFFFFF01u));
  expect_error<BadImageError>([&] { read_image_header(dir / "huge.png"); }, "over the limit of 64 megapixels");
  // Truncated and corrupt files have good headers: the decoder finds them.
  EXPECT_NO_THROW(read_image_header(bad.truncated_jpeg));
  EXPECT_NO_THROW(read_image_header(bad.corrupt_png));
  uint8_t pixels[3 * 8 * 8];
  expect_error<BadImageError>([&] { decode_image_file(bad.truncated_jpeg, {3, 8, 8}, pixels); },
                              "JPEG data ends before its end-of-image marker");
  expect_error<BadImageError>([&] { decode_image_file(bad.corrupt_png, {3, 8, 8}, pixels); },
                              "image '" + bad.corrupt_png + "': cannot be decoded");
  expect_error<BadImageError>([&] { decode_image_file(bad.bomb, {3, 8, 8}, pixels); }, "over the limit");
  expect_error<BadImageError>([&] { decode_image_file(dir / "missing.png", {3, 8, 8}, pixels); }, "cannot be opened");
  // A header cut inside IHDR, and a BMP cut short.
  fixtures::write_bytes(dir / "short.png", fixtures::bomb_png(10, 10).substr(0, 20));
  expect_error<BadImageError>([&] { read_image_header(dir / "short.png"); }, "PNG header cut short");
  fixtures::write_image(dir / "a.bmp", fixtures::shape_image(0, 0, 20, 20));
  const std::string bmp = fixtures::read_bytes(dir / "a.bmp");
  fixtures::write_bytes(dir / "cut.bmp", bmp.substr(0, bmp.size() / 2));
  expect_error<BadImageError>([&] { decode_image_file(dir / "cut.bmp", {3, 8, 8}, pixels); }, "cannot be decoded");
}

TEST(ImageDecode, ChannelsAreRgbPlanesAndGreyIsRepeated) {
  TempDir dir;
  cv::Mat image(4, 6, CV_8UC3, cv::Scalar(10, 20, 200));  // BGR: red-ish
  image(cv::Rect(3, 0, 3, 4)).setTo(cv::Scalar(210, 30, 5));  // right half blue-ish
  fixtures::write_image(dir / "rgb.png", image);
  const auto rgb = decode(dir / "rgb.png", 3, 4, 6);
  // plane 0 = R, 1 = G, 2 = B; pixel (0, 0) is left, (0, 5) right
  EXPECT_EQ(rgb[0 * 24 + 0], 200);
  EXPECT_EQ(rgb[1 * 24 + 0], 20);
  EXPECT_EQ(rgb[2 * 24 + 0], 10);
  EXPECT_EQ(rgb[0 * 24 + 5], 5);
  EXPECT_EQ(rgb[2 * 24 + 5], 210);
  fixtures::write_image(dir / "grey.png", image, 1);
  const auto grey3 = decode(dir / "grey.png", 3, 4, 6);
  for (int k = 0; k < 24; ++k) {
    EXPECT_EQ(grey3[k], grey3[24 + k]);
    EXPECT_EQ(grey3[k], grey3[48 + k]);
  }
  const auto grey1 = decode(dir / "rgb.png", 1, 4, 6);
  EXPECT_NEAR(grey1[0], 0.299 * 200 + 0.587 * 20 + 0.114 * 10, 1.0);
  fixtures::write_image(dir / "rgba.png", image, 4);
  EXPECT_EQ(decode(dir / "rgba.png", 3, 4, 6), rgb);  // alpha dropped
}

TEST(ImageDecode, ResizeThenCentreCrop) {
  TempDir dir;
  // 40 x 80 (height x width): black outer quarters, white middle half.
  cv::Mat wide(40, 80, CV_8UC3, cv::Scalar(0, 0, 0));
  wide(cv::Rect(20, 0, 40, 40)).setTo(cv::Scalar(255, 255, 255));
  fixtures::write_image(dir / "wide.png", wide);
  // To 20 x 20: scaled to 20 x 40 (covers), the middle 20 columns are the white half.
  for (uint8_t v : decode(dir / "wide.png", 3, 20, 20)) EXPECT_EQ(v, 255);
  // To 20 x 40: the whole image scaled, the black quarters stay.
  const auto whole = decode(dir / "wide.png", 1, 20, 40);
  EXPECT_EQ(whole[0], 0);
  EXPECT_EQ(whole[20], 255);
  // Enlarging a 10 x 10 image to 30 x 20: scaled to 30 x 30, 5 columns cut from each side.
  cv::Mat small(10, 10, CV_8UC3, cv::Scalar(50, 50, 50));
  small(cv::Rect(0, 0, 5, 10)).setTo(cv::Scalar(250, 250, 250));
  fixtures::write_image(dir / "small.png", small);
  const auto big = decode(dir / "small.png", 1, 30, 20);
  EXPECT_EQ(big[0], 250);   // column 0 of the crop is column 5 of the 30-wide image: left half
  EXPECT_EQ(big[19], 50);
}

TEST(ImageSize, ParsesHeightByWidthAndRefusesNonsense) {
  EXPECT_EQ(parse_image_size("112x96"), std::make_pair(int64_t{112}, int64_t{96}));
  EXPECT_EQ(parse_image_size("100"), std::make_pair(int64_t{100}, int64_t{100}));
  for (const std::string bad : {"", "x", "100x", "7x100", "100x5000", "-5x10", "10x10x3", "1e2"}) {
    expect_error<std::invalid_argument>([&] { parse_image_size(bad); }, "--image-size");
  }
}

TEST(ImageFolderScan, SortedClassesAndFilesNonImagesIgnored) {
  TempDir dir;
  fixtures::make_shape_folder(dir.path(), 3, 4);
  make_dirs(dir / ".cache");
  std::ofstream(dir / "README.md") << "ignored";
  std::ofstream(dir / "class_b/.hidden.png") << "ignored";
  fixtures::write_image(dir / "class_b/UPPER.PNG", fixtures::shape_image(1, 0, 40, 40));  // any case
  const ImageFolder folder = scan_image_folder(dir.path(), nullptr, false);
  EXPECT_EQ(folder.class_names, (std::vector<std::string>{"class_a", "class_b", "class_c"}));
  ASSERT_EQ(folder.files.size(), 13u);
  EXPECT_EQ(folder.files[0], dir / "class_a/class_a_0001.png");
  EXPECT_EQ(folder.files[4], dir / "class_b/UPPER.PNG");  // bytewise: upper case first
  EXPECT_EQ(folder.labels[4], 1);
  EXPECT_EQ(folder.labels[12], 2);
  EXPECT_EQ(folder.headers[1].height, 48);  // mixed sizes: 40, 48, 56 rows
  EXPECT_EQ(count_classes(dir.path()), 3);
  EXPECT_FALSE(is_idx_dir(dir.path()));
  EXPECT_TRUE(is_idx_dir(kDefaultDataDir));
}

TEST(ImageFolderScan, BadFilesStopTheScanOrAreSkippedAndListed) {
  TempDir dir;
  fixtures::make_shape_folder(dir.path(), 2, 3);
  const fixtures::BadFiles bad = fixtures::write_bad_files(dir / "class_a");
  try {
    scan_image_folder(dir.path(), nullptr, false);
    ADD_FAILURE() << "bad files were accepted";
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    // The three found by their headers; truncated and corrupt files pass this check.
    EXPECT_NE(message.find("3 of 11 image files"), std::string::npos) << message;
    for (const std::string& path : {bad.bomb, bad.empty, bad.text_as_jpeg}) {
      EXPECT_NE(message.find(path), std::string::npos) << path << " not named in: " << message;
    }
    EXPECT_NE(message.find("--skip-bad-images"), std::string::npos);
  }
  BadImages skipped;
  const ImageFolder folder = scan_image_folder(dir.path(), &skipped, false);
  EXPECT_EQ(folder.files.size(), 8u);
  EXPECT_EQ(skipped.count(), 3);
  EXPECT_TRUE(skipped.contains(bad.bomb));
  EXPECT_NE(skipped.summary().find("3 bad images skipped"), std::string::npos) << skipped.summary();
}

TEST(ImageFolderScan, EmptyClassFolderAndFlatFolderAreErrorsNamingThem) {
  TempDir dir;
  fixtures::make_shape_folder(dir.path(), 2, 2);
  make_dirs(dir / "class_z");
  std::ofstream(dir / "class_z/readme.txt") << "no images here";
  expect_error<std::runtime_error>([&] { scan_image_folder(dir.path(), nullptr, false); },
                                   "class folder '" + (dir / "class_z") + "' holds no image files");
  TempDir flat;
  fixtures::write_image(flat / "a.png", fixtures::shape_image(0, 0, 20, 20));
  expect_error<std::runtime_error>([&] { scan_image_folder(flat.path(), nullptr, false); },
                                   "has no class folders (only images directly inside it)");
  expect_error<std::runtime_error>([&] { scan_image_folder(flat / "nope", nullptr, false); }, "does not exist");
  // A class whose only files are bad is empty once they are skipped.
  TempDir all_bad;
  fixtures::make_shape_folder(all_bad.path(), 1, 2);
  make_dirs(all_bad / "class_x");
  fixtures::write_bytes(all_bad / "class_x/x.png", "");
  BadImages skipped;
  expect_error<std::runtime_error>([&] { scan_image_folder(all_bad.path(), &skipped, false); },
                                   "class folder '" + (all_bad / "class_x") + "' has no usable image");
}

TEST(ClassIds, RunClassesKeepTheirIdsOthersFollowSorted) {
  const std::vector<std::string> run = {"ann", "bob", "cy"};
  const ClassIds ids = class_ids_by_name({"bob", "zed", "ann", "dee"}, run, true, "x");
  EXPECT_EQ(ids.ids, (std::vector<int64_t>{1, 4, 0, 3}));
  EXPECT_EQ(ids.names, (std::vector<std::string>{"ann", "bob", "cy", "dee", "zed"}));
  expect_error<std::runtime_error>([&] { class_ids_by_name({"bob", "zed"}, run, false, "--test-data 'T'"); },
                                   "--test-data 'T': class 'zed' is not one of the run's 3 classes");
}

TEST(ImageDataset, LimitSpreadsOverTheClassesAndSelectionKeepsFiles) {
  TempDir dir;
  fixtures::make_shape_folder(dir.path(), 3, 4, 20, 20, false);
  const ImageFolder folder = scan_image_folder(dir.path(), nullptr, false);
  const Dataset data = folder_dataset(folder, class_ids_by_name(folder.class_names, folder.class_names, false, ""),
                                      {3, 20, 20});
  EXPECT_EQ(data.shape(), (ImageShape{3, 20, 20}));
  const Dataset three = limit_samples(data, 3);
  EXPECT_TRUE(torch::equal(three.labels, torch::tensor({0, 1, 2}, torch::kLong)));  // files 0, 4, 8
  EXPECT_EQ(three.files[1], data.files[4]);
  const Dataset kept = keep_classes(data, {2});
  EXPECT_EQ(kept.size(), 4);
  EXPECT_EQ(kept.files[0], dir / "class_c/class_c_0001.png");
}
